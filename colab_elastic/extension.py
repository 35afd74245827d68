"""The IPython glue: event hooks, the `%elastic` magic, and rerunning cells quietly.

The only module that talks to IPython. Works with IPython 7.34 (Colab) through 9.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.utils.process import arg_split
from IPython.display import display
from IPython.utils.capture import capture_output

from IPython.core.error import UsageError

from . import ambient, colab, files, randomness
from .config import Settings, safe_name
from .errors import ElasticError, RecordingWarning, RestoreVerificationError, UntrustedCheckpointError
from .restore import RunOutcome
from .session import Session

log = logging.getLogger("colab_elastic.extension")


class ShellRunner:
    """Reruns cells in the shell with our hooks silent and their output captured."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.namespace = shell.user_ns
        self.ambient = ambient.Ambient(shell_settings(shell))

    def run(self, code: str, rng: str | None = None) -> RunOutcome:
        # silent=True fires no pre/post_run_cell events and keeps history untouched. ipykernel
        # publishes tracebacks straight to the frontend, past any output capture: we report
        # a rerun's traceback ourselves, so the shell's own display of it is muted meanwhile.
        shell = self.shell
        if rng is not None:
            randomness.apply(rng)
        shell.showtraceback = _quiet_traceback
        try:
            with capture_output(display=True):
                result = shell.run_cell(code, store_history=False, silent=True)
        finally:
            del shell.showtraceback
        error = result.error_before_exec or result.error_in_exec
        if error is None:
            return RunOutcome(True)
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return RunOutcome(False, type(error).__name__, text)


# Backends whose `%matplotlib` name is not the backend's own.
_GUI_OF_BACKEND = {"module://matplotlib_inline.backend_inline": "inline", "module://ipympl.backend_nbagg": "widget"}


def shell_settings(shell: Any) -> tuple[ambient.Setting, ...]:
    """The IPython-level settings a cell can change: `%matplotlib`, `%config`, `%load_ext`."""

    def backend() -> str | None:
        mpl = sys.modules.get("matplotlib")
        if mpl is None or "matplotlib.pyplot" not in sys.modules:
            return None  # no backend chosen yet
        chosen = dict.get(mpl.rcParams, "backend")  # not rcParams[...]: that would resolve one
        return chosen if isinstance(chosen, str) else None

    def set_backend(name: str) -> None:
        # `%matplotlib` also turns interactive mode on, which a session that chose its backend
        # with `matplotlib.use('agg')` never had: every later cell would then redraw every open
        # figure. Whether it was on is rcParams' own record (the cell that turned it on changed
        # rcParams['interactive'], replayed with the other rc values), so the magic keeps it.
        import matplotlib

        interactive = matplotlib.is_interactive()
        shell.run_line_magic("matplotlib", _GUI_OF_BACKEND.get(name, name))
        matplotlib.interactive(interactive)

    def config() -> dict[str, Any]:
        return {f"{section}.{key}": value for section, values in shell.config.items() if isinstance(values, dict)
                for key, value in values.items()}

    def set_config(change: dict[str, Any]) -> None:
        for key, value in change["set"].items():
            shell.run_line_magic("config", f"{key} = {value!r}")

    def extensions() -> list[str]:
        return sorted(n for n in shell.extension_manager.loaded if n != "colab_elastic")

    def load_extensions(names: list[str]) -> None:
        # Only loaded, never unloaded: the restoring kernel's own extensions stay.
        for name in names:
            if name not in shell.extension_manager.loaded:
                if shell.extension_manager.load_extension(name) == "no load function":
                    raise ElasticError(f"{name} has no load_ipython_extension")

    return (
        ambient.Setting("ipython.extensions", extensions, load_extensions),
        ambient.Setting("ipython.matplotlib", backend, set_backend),
        ambient.Setting("ipython.config", config, set_config, keyed=True),
    )


def _quiet_traceback(*args: Any, **kwargs: Any) -> None:
    """Stands in for `shell.showtraceback` while a cell is rerun during a restore."""


def _transform(shell: Any):
    def transform(raw_cell: str) -> str:
        return shell.transform_cell(raw_cell)

    return transform


def _options(pairs: list[str] | None) -> dict[str, Any]:
    """`--option key=value` pairs, passed to fsspec as storage options."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:

            raise UsageError(f"--option expects key=value, got {pair!r}")
        options[key] = value
    return options


@magics_class
class ElasticMagics(Magics):
    """`%elastic checkpoint|restore|plan|status|name`."""

    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.session = session

    @magic_arguments()
    @argument("command", choices=["checkpoint", "restore", "plan", "status", "name", "auto", "share", "export",
                                  "log", "fresh"],
              help="what to do")
    @argument("target", nargs="?", default=None,
              help="checkpoint URL; the session name for `name`; on/off for `auto`; the file for `export`")
    @argument("--trust", action="store_true", help="restore: accept a checkpoint written by someone else")
    @argument("--at", default=None, metavar="CHECKPOINT",
              help="restore: this checkpoint (an id from %%elastic log, or a unique part of one)")
    @argument("--strict", action="store_true",
              help="restore: an error if anything is not back as it was (after the report)")
    @argument("--install", action="store_true",
              help="restore: first rerun the notebook's recorded install lines (%%pip install, !apt-get install)")
    @argument("--force", action="store_true",
              help="checkpoint: put this session's checkpoint over another session's at that location")
    @argument("--source", default=None, help="export: the checkpoint URL to export (default: this session's)")
    @argument("-o", "--option", action="append", metavar="KEY=VALUE", help="fsspec storage option (repeatable)")
    @argument("--interval", type=float, default=None, help="auto: checkpoint at most every this many seconds")
    @argument("--after", type=float, default=None, help="auto: always checkpoint after a cell this long (seconds)")
    @line_magic
    def elastic(self, line: str) -> None:
        """Checkpoint and restore this notebook session.

        %elastic checkpoint [URL]   store what is slow to recompute, commit a checkpoint
        %elastic restore [URL] [--at CHECKPOINT] [--strict] [--install]
                                    load the newest intact checkpoint (or that one), rerun the minimal cells;
                                    --strict: an error if anything differs from the original;
                                    --install: first replay the recorded install lines
        %elastic log [URL]          every checkpoint there, newest first: intact or damaged
        %elastic fresh              start a new session at this location (its checkpoint stays reachable)
        %elastic plan [URL]         dry run: what would be stored, what recomputed, and why
        %elastic status             where checkpoints go, what the last one covered
        %elastic name NAME          name this session (its default location follows)
        %elastic share [URL]        what to send a collaborator, and what they run
        %elastic export FILE [--source URL]   the checkpoint as one .zip file
        %elastic auto on|off [--interval S] [--after S]
                                    checkpoint after cells, in the background (on by default)
        """
        # Options may come before or after the URL (`-o token=... gs://b/x`): intermixed parsing.
        args = self.elastic.parser.parse_intermixed_args(arg_split(line))
        options = _options(args.option)
        try:
            getattr(self, f"_{args.command}")(args, options)
        except ElasticError as exc:
            raise UsageError(f"colab_elastic: {exc}") from None

    # One method per subcommand; each shows its result, never returns it (no Out[] clutter).
    def _checkpoint(self, args: Any, options: dict[str, Any]) -> None:
        display(self.session.checkpoint(args.target, options, force=args.force))

    def _log(self, args: Any, options: dict[str, Any]) -> None:
        display(self.session.log(args.target, options))

    def _fresh(self, args: Any, options: dict[str, Any]) -> None:
        print(f"colab_elastic: {self.session.fresh(args.target, options)}")

    def _restore(self, args: Any, options: dict[str, Any]) -> None:
        try:
            report = self.session.restore(args.target, options, trust=args.trust, at=args.at, strict=args.strict,
                                          install=args.install)
        except UntrustedCheckpointError as exc:
            print(exc.summary)  # what it would run, above the one-line refusal
            raise
        except RestoreVerificationError as exc:
            display(exc.report)  # the whole report, above the one-line error
            raise
        display(report)

    def _plan(self, args: Any, options: dict[str, Any]) -> None:
        display(self.session.plan(args.target, options))

    def _status(self, args: Any, options: dict[str, Any]) -> None:
        if args.target:
            raise UsageError(f"%elastic status takes no argument (got {args.target!r})")
        display(self.session.status())

    def _share(self, args: Any, options: dict[str, Any]) -> None:
        print(self.session.share(args.target, options))

    def _export(self, args: Any, options: dict[str, Any]) -> None:
        if not args.target:
            raise UsageError("%elastic export needs a FILE (e.g. checkpoint.zip)")
        size = self.session.export(args.target, args.source, options)
        print(f"colab_elastic: wrote {args.target} ({size / 1e6:.1f} MB of stored values); "
              f"restore it with %elastic restore {args.target} --trust")

    def _auto(self, args: Any, options: dict[str, Any]) -> None:
        policy = self.session.autosave.policy
        if args.target not in (None, "on", "off"):
            raise UsageError("%elastic auto takes on or off")
        if min(args.interval or 0, args.after or 0) < 0:
            raise UsageError("%elastic auto: --interval and --after are seconds, never negative")
        if args.target is not None:
            policy.enabled = args.target == "on"
        if args.interval is not None:
            policy.min_interval = args.interval
        if args.after is not None:
            policy.long_cell = args.after
        print(f"colab_elastic: auto-checkpoint {policy.describe()}, to {self.session.url()}")

    def _name(self, args: Any, options: dict[str, Any]) -> None:
        if not args.target:
            raise UsageError("%elastic name needs a NAME")
        self.session.settings.session = safe_name(args.target)
        print(f"colab_elastic: session {self.session.settings.session}, checkpoints go to {self.session.url()}")
        found = self.session.check_location()
        if found:
            print(f"colab_elastic: {found}")


class Extension:
    """What `%load_ext colab_elastic` sets up, and `%unload_ext` takes down again."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.session = Session(
            shell.user_ns, ShellRunner(shell), hidden=shell.user_ns_hidden, transform=_transform(shell), settings=Settings(),
        )
        # What a cell's auto-checkpoint has to tell (another session's checkpoint found where
        # checkpoints now go) shows under that cell.
        self.session.notify = lambda text: print(f"colab_elastic: {text}")

    def pre_run_cell(self, info: Any = None) -> None:
        if info is None or getattr(info, "silent", False):
            return
        try:
            self.session.before_cell(info.raw_cell, getattr(info, "cell_id", None) or colab.cell_id(self.shell))
        except Exception as exc:  # noqa: BLE001 - never break the user's cell
            warnings.warn(f"colab_elastic: recording failed: {exc!r}", RecordingWarning, stacklevel=2)

    def post_run_cell(self, result: Any = None) -> None:
        if result is None:
            return
        if result.error_before_exec is not None:
            self.session.recorder.discard_pending()  # nothing ran
            return
        try:
            self.session.after_cell(result.error_in_exec)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"colab_elastic: recording failed: {exc!r}", RecordingWarning, stacklevel=2)

    def register(self) -> None:
        self.shell.register_magics(ElasticMagics(self.shell, self.session))
        # Neither our checkpoints nor IPython's history database are the notebook's files.
        hist_file = getattr(getattr(self.shell, "history_manager", None), "hist_file", None)
        for path in (self.session.url(), str(hist_file) if hist_file else ""):
            if path and os.path.isabs(path):
                self.session.files.ignore(path)
        files.install_hook(self.session.files)
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)

    def unregister(self) -> None:
        self.session.autosave.close()
        files.install_hook(None)  # audit hooks stay for the process: ours now does nothing
        for event, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(event, callback)
            except ValueError:
                log.debug("%s callback was already unregistered", event)
        magics = self.shell.magics_manager.magics.get("line", {})
        magics.pop("elastic", None)


_extensions: dict[int, Extension] = {}


def load(shell: Any) -> Extension:
    if id(shell) in _extensions:
        return _extensions[id(shell)]
    extension = Extension(shell)
    extension.register()
    _extensions[id(shell)] = extension
    url = extension.session.url()
    print(f"colab_elastic: recording this session; checkpoints go to {url}")
    warning = colab.ephemeral_location_warning(url)
    if warning:
        print(f"colab_elastic: {warning}")
    found = extension.session.check_location()
    if found:
        print(f"colab_elastic: {found}")
    return extension


def unload(shell: Any) -> None:
    extension = _extensions.pop(id(shell), None)
    if extension is not None:
        extension.unregister()


def current() -> Extension:
    """The extension loaded in the running IPython shell."""
    from .errors import NotInIPythonError

    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        get_ipython = lambda: None  # noqa: E731
    shell = get_ipython()
    if shell is None:
        raise NotInIPythonError("colab_elastic needs an IPython or Jupyter session (this is plain Python)")
    extension = _extensions.get(id(shell))
    if extension is None:
        raise NotInIPythonError("colab_elastic is not loaded here: run %load_ext colab_elastic first")
    return extension
