"""Session settings that are not variables, so that they come back with a restore.

A cell can change the session without assigning anything: `plt.style.use('ggplot')`,
`warnings.filterwarnings('ignore')`, `pd.set_option(...)`, `np.set_printoptions(...)`,
`sys.path.append(...)`, `os.environ[...] = ...`, `%cd`, `%matplotlib`, `%config`, `%load_ext`.
When a restore loads such a cell's outputs instead of rerunning it, the change would be lost.
So the recorder takes a small snapshot of these settings before and after every cell and
keeps on the cell's execution only what the cell changed; the restore applies that at the
cell's place in the history, so later reruns see the settings they saw the first time.

    capture() ─► Snapshot ─► diff(before, after) ─► Effect ─► encode ─► CellExecution.ambient
                                                          restore ─► Ambient.apply

Pure: no IPython. A library's settings are read only once the session imported it
(`sys.modules`); applying one imports the library if the restoring kernel has not yet (the
cell that set it had imported it). The IPython-level ones are `Setting`s the extension passes
in. A snapshot is shallow copies (the values themselves are rarely touched), so two of them
and a diff cost about 0.15 ms per cell with numpy, pandas and matplotlib imported.
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import pickle
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import credentials
from .errors import describe

log = logging.getLogger("colab_elastic.ambient")

Snapshot = dict[str, Any]  # setting name -> its value now (a dict for keyed settings)
Effect = dict[str, Any]  # setting name -> what a cell changed: a value, or {"set": {...}, "unset": [...]}


@dataclass(frozen=True)
class Setting:
    """One piece of session state that is not a variable.

    `read` returns None when it does not apply now (its library is not imported). A keyed
    setting (`keyed=True`) reads as a dict and is recorded as the keys that changed; `write`
    then gets {"set": {...}, "unset": [...]}, otherwise the whole new value. `baseline` is what
    a fresh import would hold, to diff against when the library appears during a cell.
    """

    name: str
    read: Callable[[], Any]
    write: Callable[[Any], None]
    keyed: bool = False
    baseline: Callable[[], Any] = lambda: None


# Process-wide settings ----------------------------------------------------------------------
def _read_cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the folder was deleted under us: nothing to restore
        return None


def _write_environ(change: dict[str, Any]) -> None:
    # "withheld": names whose values looked like credentials and were not recorded (see
    # `withhold_credentials`); `Ambient.apply` names them.
    os.environ.update(change["set"])
    for key in change["unset"]:
        os.environ.pop(key, None)


def _write_path(value: list[str]) -> None:
    sys.path[:] = value


def _write_filters(value: list[tuple[Any, ...]]) -> None:
    # Through the public API (not `warnings.filters[:] =`), so the module's cache is invalidated.
    warnings.resetwarnings()
    for action, message, category, module, lineno in value:
        # Patterns are compiled by filterwarnings, but a filter put in the list directly may hold a str.
        warnings.filterwarnings(action, getattr(message, "pattern", message) or "", category,
                                getattr(module, "pattern", module) or "", lineno, append=True)


# Libraries, only once imported ----------------------------------------------------------------
def _library(name: str) -> Any:
    """The library a recorded setting belongs to, importing it if this kernel has not yet.

    A setting is recorded only once the session imported its library, so the cell that changed
    it ran after (or itself did) the import; a restore that loads that cell instead of rerunning
    it must do the import the cell did before applying what the cell set.
    """
    return sys.modules.get(name) or importlib.import_module(name)


def _read_printoptions() -> dict[str, Any] | None:
    np = sys.modules.get("numpy")
    return None if np is None else dict(np.get_printoptions())


def _printoptions_baseline() -> dict[str, Any] | None:
    defaults = getattr(sys.modules.get("numpy._core.printoptions"), "default_format_options_dict", None)
    if not isinstance(defaults, dict):
        return None
    # Stored as sys.maxsize, shown by get_printoptions as False.
    return {**defaults, "legacy": False} if defaults.get("legacy") == sys.maxsize else dict(defaults)


def _write_printoptions(change: dict[str, Any]) -> None:
    _library("numpy").set_printoptions(**change["set"])


def _pandas_config() -> Any:
    pd = sys.modules.get("pandas")
    # pandas has no public "all options as a dict"; `pd.get_option` per key costs ~10 µs each.
    return getattr(getattr(pd, "_config", None), "config", None)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _read_pandas() -> dict[str, Any] | None:
    config = _pandas_config()
    tree = getattr(config, "_global_config", None)
    return _flatten(tree) if isinstance(tree, dict) else None


def _pandas_baseline() -> dict[str, Any] | None:
    registered = getattr(_pandas_config(), "_registered_options", None)
    return {k: o.defval for k, o in registered.items()} if isinstance(registered, dict) else None


def _write_pandas(change: dict[str, Any]) -> None:
    pd = _library("pandas")
    for key, value in change["set"].items():
        pd.set_option(key, value)


# The backend is the shell's business (`%matplotlib`): switching it is not an rc update.
_NOT_RC = frozenset({"backend"})


def _read_rc() -> dict[str, Any] | None:
    mpl = sys.modules.get("matplotlib")
    rc = getattr(mpl, "rcParams", None)
    # dict.items, not rc.items(): RcParams validates and resolves on every item access.
    return None if rc is None else {k: v for k, v in dict.items(rc) if k not in _NOT_RC}


def _rc_baseline() -> dict[str, Any] | None:
    orig = getattr(sys.modules.get("matplotlib"), "rcParamsOrig", None)
    return None if orig is None else {k: v for k, v in dict.items(orig) if k not in _NOT_RC}


def _write_rc(change: dict[str, Any]) -> None:
    _library("matplotlib").rcParams.update(change["set"])


STANDARD: tuple[Setting, ...] = (
    Setting("cwd", _read_cwd, os.chdir),
    Setting("sys.path", lambda: list(sys.path), _write_path),
    Setting("os.environ", lambda: dict(os.environ), _write_environ, keyed=True),
    Setting("warnings.filters", lambda: list(warnings.filters), _write_filters),
    Setting("numpy.printoptions", _read_printoptions, _write_printoptions, keyed=True, baseline=_printoptions_baseline),
    Setting("pandas.options", _read_pandas, _write_pandas, keyed=True, baseline=_pandas_baseline),
    Setting("matplotlib.rcParams", _read_rc, _write_rc, keyed=True, baseline=_rc_baseline),
)


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    if before == after:  # values mostly the very same objects: identity makes this cheap
        return None
    changed = {k: v for k, v in after.items() if k not in before or not _equal(before[k], v)}
    unset = [k for k in before if k not in after]
    return {"set": changed, "unset": unset} if changed or unset else None


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except Exception:  # noqa: BLE001 - an array-like value without a truth value counts as changed
        return False


class Ambient:
    """The settings of one session: snapshot them, diff two snapshots, apply a recorded change.

    The IPython-level settings (`%matplotlib`, `%config`, loaded extensions) are `shell`
    settings; they come first when applying, since switching a backend may reset rc values
    the same cell then set.
    """

    def __init__(self, shell: Iterable[Setting] = ()) -> None:
        self.settings = (*shell, *STANDARD)
        self._by_name = {s.name: s for s in self.settings}

    def capture(self) -> Snapshot:
        """The settings right now; a setting that cannot be read is left out (and logged)."""
        snapshot: Snapshot = {}
        for setting in self.settings:
            try:
                value = setting.read()
            except Exception as exc:  # noqa: BLE001 - one library's oddity must not cost the others
                log.debug("cannot read %s: %r", setting.name, exc)
                continue
            if value is not None:
                snapshot[setting.name] = value
        return snapshot

    def diff(self, before: Snapshot, after: Snapshot) -> Effect:
        """What changed from `before` to `after`: only the keys that changed, for keyed settings."""
        effect: Effect = {}
        for setting in self.settings:
            name = setting.name
            if name not in after:
                continue
            old, new = before.get(name), after[name]
            if setting.keyed:
                if old is None:
                    try:
                        old = setting.baseline()
                    except Exception as exc:  # noqa: BLE001
                        log.debug("no baseline for %s: %r", name, exc)
                        old = None
                delta = _delta(old or {}, new)
                if delta is not None:
                    effect[name] = delta
            elif not _equal(old, new):
                effect[name] = new
        return effect

    def apply(self, encoded: str) -> dict[str, str]:
        """Apply a recorded effect; never raises. Returns setting -> why it could not be applied."""
        failures: dict[str, str] = {}
        try:
            parts = pickle.loads(base64.b64decode(encoded))
        except Exception as exc:  # noqa: BLE001 - a damaged record loses its settings, not the restore
            return {"settings": f"unreadable record ({describe(exc)})"}
        for setting in self.settings:
            if setting.name not in parts:
                continue
            try:
                change = pickle.loads(parts[setting.name])
                setting.write(change)
            except Exception as exc:  # noqa: BLE001 - named in the restore report instead
                failures[setting.name] = describe(exc)
                log.info("could not apply %s: %r", setting.name, exc)
                continue
            for key in (change.get("withheld") or []) if isinstance(change, dict) else []:
                failures[f"{setting.name}[{key!r}]"] = credentials.WITHHELD
        unknown = sorted(set(parts) - set(self._by_name))
        for name in unknown:
            failures[name] = "not a setting this session knows how to apply"
        return failures

    def settle(self, recorded: Iterable[str], names: Iterable[str]) -> dict[str, str]:
        """Give each of `names` the last value the history recorded for it, where the session now
        holds another; never raises. Returns setting -> why it could not be applied.

        For settings a cell's rerun does not set again: the matplotlib backend a cell found as
        its kernel's default when it imported pyplot (the inline one) comes back, on rerun, as
        the restoring kernel's default (say agg, where figures display as `<Figure size ...>`).
        """
        last: dict[str, Any] = {}
        for encoded in recorded:
            try:
                effect = decode(encoded)
            except Exception as exc:  # noqa: BLE001 - a damaged record is reported by `apply`
                log.debug("unreadable settings record: %r", exc)
                continue
            last.update({name: effect[name] for name in names if name in effect})
        failures: dict[str, str] = {}
        for name, value in last.items():
            setting = self._by_name.get(name)
            if setting is None or setting.keyed:
                continue
            try:
                if not _equal(setting.read(), value):
                    setting.write(value)
            except Exception as exc:  # noqa: BLE001 - named in the restore report instead
                failures[name] = describe(exc)
        return failures


def withhold_credentials(effect: Effect) -> Effect:
    """`effect` without the values of environment variables that look like credentials (by
    name, `OPENAI_API_KEY`, or by value, `ghp_...`): their names go under "withheld", so a
    restore can say which to set again, and no checkpoint carries the secret."""
    change = effect.get("os.environ")
    if not isinstance(change, dict) or not change.get("set"):
        return effect
    secret = sorted(k for k, v in change["set"].items() if isinstance(v, str) and (
        credentials.token_kind(v) or (credentials.looks_like_secret_name(k) and not credentials.is_plain_value(v))))
    if not secret:
        return effect
    kept = {k: v for k, v in change["set"].items() if k not in secret}
    return {**effect, "os.environ": {"set": kept, "unset": change["unset"], "withheld": secret}}


def encode(effect: Effect) -> tuple[str | None, dict[str, str]]:
    """Text for the history, and setting -> why it was left out (a value that will not pickle).

    Each setting is pickled on its own, so one that cannot be read back (a warning category
    defined in the notebook, say) costs only itself.
    """
    parts: dict[str, bytes] = {}
    dropped: dict[str, str] = {}
    for name, change in effect.items():
        try:
            parts[name] = pickle.dumps(change, protocol=4)
        except Exception as exc:  # noqa: BLE001
            dropped[name] = describe(exc)
    if not parts:
        return None, dropped
    return base64.b64encode(pickle.dumps(parts, protocol=4)).decode("ascii"), dropped


def decode(encoded: str) -> Effect:
    """The effect `encode` wrote (for reports and tests)."""
    parts = pickle.loads(base64.b64decode(encoded))
    return {name: pickle.loads(data) for name, data in parts.items()}
