"""Load: a long session checkpoints and restores whole; garbage collection between many
checkpoints leaves exactly the blobs the kept checkpoints need.

In the in-process shell (a kernel adds only its message round trips, ~1 ms a cell).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import colab_elastic
from colab_elastic.retention import collect_garbage
from colab_elastic.store import Store

CELLS = 2_000
VARIABLES = 5_000


def _cell(i: int) -> str:
    """Cell i of the long session: new variables (5,000 in all), some reading earlier ones,
    some changing one in place, now and then a slow one whose result is worth storing."""
    first = (i * VARIABLES) // CELLS
    last = ((i + 1) * VARIABLES) // CELLS
    lines = []
    for n in range(first, last):
        kind = n % 5
        if kind == 0:
            lines.append(f"v{n} = {n}")
        elif kind == 1:
            lines.append(f"v{n} = 'value {n}'")
        elif kind == 2:
            lines.append(f"v{n} = [v{n - 2}, v{n - 1}]")
        elif kind == 3:
            lines.append(f"v{n} = {{'n': {n}, 'sq': {n} ** 2}}")
        else:
            lines.append(f"v{n} = tuple(range({n % 50}))")
    if i % 100 == 50:
        lines.append(f"v{5 * (first // 5) - 3}.append({i})")  # a list changed in place: a new version
    if i % 400 == 399:
        lines.append("time.sleep(0.01)")
    return "\n".join(lines)


def _expected() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec("import time", namespace)
    for i in range(CELLS):
        exec(_cell(i), namespace)
    return {k: v for k, v in namespace.items() if k.startswith("v")}


def test_two_thousand_cells_and_five_thousand_variables_checkpoint_and_restore(shell: Any, tmp_path: Path) -> None:
    started = time.perf_counter()
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("import time", store_history=True)
    for i in range(CELLS):
        assert shell.run_cell(_cell(i), store_history=True).success
    recorded = time.perf_counter()
    url = str(tmp_path / "ckpt")
    result = colab_elastic.checkpoint(url)
    checkpointed = time.perf_counter()
    assert len(result.plan.groups) >= VARIABLES

    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "colab_elastic")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing recomputed instead of loaded, nothing missing
        report = colab_elastic.restore(url)
    restored = time.perf_counter()
    assert report.ok, report.problem_summary()
    want = _expected()
    have = {k: v for k, v in shell.user_ns.items() if k.startswith("v")}
    assert have.keys() == want.keys() and len(want) == VARIABLES
    assert [k for k in want if have[k] != want[k] or type(have[k]) is not type(want[k])] == []
    print(f"record {recorded - started:.1f} s, checkpoint {checkpointed - recorded:.1f} s, "
          f"restore {restored - checkpointed:.1f} s")  # figures, not a timed test: see benchmarks/


def _referenced(store: Store) -> set[str]:
    """Blob keys every manifest left at `store` names (each read as its restore would)."""
    keys: set[str] = set()
    for checkpoint in store.checkpoint_ids() or []:
        manifest = store.manifest(checkpoint)
        entries = list(manifest.get("groups", [])) + list((manifest.get("files") or {}).get("entries", []))
        keys.update(e["blob"]["key"] for e in entries if isinstance(e.get("blob"), dict))
    return keys


def test_twenty_checkpoints_with_garbage_collection_leave_exactly_the_blobs_needed(shell: Any, tmp_path: Path) -> None:
    url = str(tmp_path / "ckpt")
    store = Store(url)
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("import time\ntime.sleep(0.02)\nbase = list(range(20_000))", store_history=True)
    for i in range(20):
        # Every round changes some values and brings an old one back (its blob was collected).
        shell.run_cell(f"time.sleep(0.02)\nstep = {i}\nrecent = [step] * 3000\nsetting = {i % 3}", store_history=True)
        if i % 4 == 0:
            shell.run_cell("time.sleep(0.02)\nbase.append(len(base))", store_history=True)
        colab_elastic.checkpoint(url)
        collect_garbage(store, keep=3, grace=0)
        blobs = set((store.blob_sizes() or {}).keys())
        needed = _referenced(store)
        assert needed <= blobs, f"round {i}: manifests name blobs that are gone: {sorted(needed - blobs)}"
        assert blobs <= needed, f"round {i}: blobs no kept manifest names: {sorted(blobs - needed)}"
        assert len(store.checkpoint_ids() or []) == min(i + 1, 3)
    shell.run_line_magic("unload_ext", "colab_elastic")
    expected = {k: shell.user_ns[k] for k in ("base", "step", "recent", "setting")}
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "colab_elastic")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = colab_elastic.restore(url)
    assert report.ok
    assert {k: shell.user_ns[k] for k in expected} == expected
