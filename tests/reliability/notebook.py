"""The notebook the fault harness records, the states it must restore to, and the tools of
its processes: an in-process shell, and a forked child per fault.

A state is what the cells leave when run plainly (`expected`), compared with a restored
session by the values' own equality (`same`), never by colab_elastic's fingerprints.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from typing import Any, Callable

# The notebook: state A is what the first checkpoint holds, state B the second.
CELLS_A = [
    "import time\nimport numpy as np\nbase = np.arange(80_000, dtype=np.float64)",
    # Slow enough to be stored whatever the measured speed (a loopback GCS latency of 50 ms made
    # a 30 ms cell cheaper to rerun, leaving no blob for the damage faults to hurt).
    "time.sleep(0.3)\nmodel = {'w': base * 2.0, 'name': 'm1'}",
    "items = [i * i for i in range(2000)]",
    "time.sleep(0.03)\nlabels = {str(i): i for i in range(3000)}",
    "alias = model['w']",
]
CELLS_B = [
    "time.sleep(0.03)\nmodel['w'] += 1.0\nmodel['name'] = 'm2'",
    "items.append(-1)",
    "time.sleep(0.03)\nfresh = np.ones(5000) * 7",
    "del labels",
]
# State C: a third checkpoint, in the kill runs only (more points where two commits exist).
CELLS_C = [
    "time.sleep(0.03)\nextra = {'k': list(range(3000))}",
    "items = items[:100]",
]


def expected(cells: list[str]) -> dict[str, Any]:
    """What the cells leave behind when run plainly, without IPython or colab_elastic."""
    namespace: dict[str, Any] = {}
    for code in cells:
        exec(code, namespace)
    namespace.pop("__builtins__", None)
    return namespace


def same(a: Any, b: Any) -> bool:
    """Equal by the values' own equality (numpy: same dtype, shape and elements)."""
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def user_names(shell: Any) -> dict[str, Any]:
    hidden = shell.user_ns_hidden
    return {k: v for k, v in shell.user_ns.items() if not k.startswith("_") and k not in hidden}


def differences(shell: Any, want: dict[str, Any]) -> str:
    """'' when the session holds exactly `want`; else what is missing, extra or different."""
    have = user_names(shell)
    problems = [f"missing {n}" for n in sorted(want.keys() - have.keys())]
    problems += [f"extra {n}" for n in sorted(have.keys() - want.keys())]
    problems += [f"{n} differs" for n in sorted(want.keys() & have.keys()) if not same(have[n], want[n])]
    return "; ".join(problems)


def make_shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    return InteractiveShell.instance(config=config)


def run_cells(shell: Any, cells: list[str]) -> None:
    for code in cells:
        result = shell.run_cell(code, store_history=True)
        if not result.success:
            raise RuntimeError(f"cell failed: {code!r}")


def fresh_session(shell: Any) -> None:
    """A new runtime's session: nothing of the old one's names or extension state."""
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "colab_elastic")


def fork(body: Callable[[], Any], timeout: float = 120) -> tuple[str, Any]:
    """Run `body` in a forked child; returns ("done", its JSON result), ("killed", None) or
    ("crashed", traceback)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        code = 0
        try:
            import gcsfs

            gcsfs.GCSFileSystem.clear_instance_cache()  # a gcsfs instance is not fork-safe
            payload = json.dumps(["done", body()])
        except BaseException:  # noqa: BLE001 - reported to the parent, whatever it was
            payload, code = json.dumps(["crashed", traceback.format_exc()]), 1
        with os.fdopen(write_end, "w") as out:
            out.write(payload)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "killed", os.WTERMSIG(status)
    return tuple(json.loads(text))  # type: ignore[return-value]


def pick(items: list[int], n: int) -> list[int]:
    """`n` of `items`, evenly spread."""
    return [items[i - 1] for i in spread(len(items), n)] if items and n else []


def spread(total: int, points: int | str | None) -> list[int]:
    """`points` operations evenly spread over 1..total ("all": every one)."""
    if points == "all" or points is None or int(points) >= total:
        return list(range(1, total + 1))
    n = int(points)
    return sorted({1 + round(i * (total - 1) / max(1, n - 1)) for i in range(n)})


RACER_SETUP = "import time\nwho = {who!r}\nstep = 0\ntrail = []"
RACER_STEP = "time.sleep(0.02)\nstep += 1\ntrail = trail + [who * step]"


def racer_state(who: str, steps: int) -> dict[str, Any]:
    return expected([RACER_SETUP.format(who=who)] + [RACER_STEP] * steps)


def racer(spec: dict[str, Any]) -> dict[str, Any]:
    """One of two kernels racing: record, then checkpoint after every step."""
    import colab_elastic
    from colab_elastic.errors import ElasticError

    shell = make_shell()
    shell.run_line_magic("load_ext", "colab_elastic")
    run_cells(shell, [RACER_SETUP.format(who=spec["racer"])])
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    checkpoints: list[tuple[str | None, str | None]] = []
    for _ in range(spec["steps"]):
        run_cells(shell, [RACER_STEP])
        try:
            checkpoints.append((colab_elastic.checkpoint(spec["url"], **spec["options"]).checkpoint, None))
        except ElasticError as exc:
            checkpoints.append((None, str(exc)))
    return {"checkpoints": checkpoints}
