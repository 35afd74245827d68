"""Real-kernel helpers: run a notebook, checkpoint, kill the kernel, restore in a new one, compare."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from colab_elastic.kernel import CellOutput, Kernel

SNAPSHOT = "__import__('colab_elastic.compare', fromlist=['snapshot']).snapshot({path!r})"
# An expression (it binds no name in the session compared): wait until auto-checkpoints uploaded.
WAIT_FOR_UPLOADS = "__import__('colab_elastic.extension', fromlist=['current']).current().session.autosave.wait(60)"
COMPARE = "print(__import__('json').dumps(__import__('colab_elastic.compare', fromlist=['compare']).compare({path!r})))"


@dataclass
class RoundTrip:
    """What happened across one disconnect."""

    checkpoint: CellOutput
    restore: CellOutput
    comparison: dict[str, Any]
    kernel: Kernel  # the new, restored kernel (still running)

    @property
    def verdicts(self) -> dict[str, str]:
        return self.comparison["values"]

    def assert_identical(self) -> None:
        bad = {n: v for n, v in self.verdicts.items() if v != "same"}
        assert not bad, f"variables differ after restore: {bad}\n{self.restore.text}"
        aliasing = self.comparison["aliasing"]
        assert aliasing["same"], f"aliasing differs: {aliasing}"

    def value(self, expression: str) -> Any:
        out = self.kernel.run(f"print(repr({expression}))")
        out.raise_for_error()
        return out.stdout.strip()


def run_cells(kernel: Kernel, cells: Sequence[str], allow_errors: Sequence[int] = ()) -> list[CellOutput]:
    outputs = []
    for i, code in enumerate(cells):
        out = kernel.run(code)
        if i not in allow_errors:
            out.raise_for_error()
        outputs.append(out)
    return outputs


def compare(kernel: Kernel, snapshot: Path) -> dict[str, Any]:
    out = kernel.run(COMPARE.format(path=str(snapshot)))
    out.raise_for_error()
    return json.loads(out.stdout.strip().splitlines()[-1])


def restore_in_new_kernel(cwd: Path, restore: str, env: dict[str, str] | None = None,
                          log: str | None = None) -> tuple[Kernel, CellOutput]:
    """A new runtime: start a kernel, `%load_ext colab_elastic`, run the `%elastic restore ...`
    line given. Returns the kernel (the caller closes it) and the restore's output."""
    kernel = Kernel(cwd=str(cwd), env=env, log=log)
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        restored = kernel.run(restore)
        restored.raise_for_error()
    except BaseException:
        kernel.close()
        raise
    return kernel, restored


def roundtrip(
    tmp_path: Path,
    cells: Sequence[str],
    *,
    url: str | None = None,
    allow_errors: Sequence[int] = (),
    between: Any = None,
    env: dict[str, str] | None = None,
    restore_args: str = "",
) -> RoundTrip:
    """Run `cells` after `%load_ext`, checkpoint to `url`, SIGKILL the kernel, restore in a new one.

    `between(tmp_path)` runs after the kill, before the restore (to damage a checkpoint, say).
    The caller closes `result.kernel`.
    """
    url = url or str(tmp_path / "ckpt")
    snapshot = tmp_path / "original.snapshot"
    first = Kernel(cwd=str(tmp_path), env=env, log=str(tmp_path / "kernel1.log"))
    try:
        first.run("%load_ext colab_elastic").raise_for_error()
        run_cells(first, cells, allow_errors)
        checkpoint = first.run(f"%elastic checkpoint {url}")
        checkpoint.raise_for_error()
        first.run(SNAPSHOT.format(path=str(snapshot))).raise_for_error()
    finally:
        first.kill()
    if between is not None:
        between(tmp_path)
    second, restored = restore_in_new_kernel(tmp_path, f"%elastic restore {url} {restore_args}".strip(), env,
                                             log=str(tmp_path / "kernel2.log"))
    try:
        comparison = compare(second, snapshot)
    except BaseException:
        second.close()
        raise
    return RoundTrip(checkpoint, restored, comparison, second)
