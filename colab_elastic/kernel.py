"""A real Jupyter kernel driven from Python (jupyter_client): used by the demo and the tests.

A disconnect is simulated the way a runtime dies: SIGKILL to the kernel process, no goodbye.
"""

from __future__ import annotations

import os
import queue
import signal
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import start_new_kernel

# Never let google-auth probe a cloud metadata server from a kernel we start.
LOOPBACK_ENV = {
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
}


@dataclass
class CellOutput:
    """What one executed cell sent back."""

    status: str
    stdout: str = ""
    stderr: str = ""
    data: list[dict[str, Any]] = field(default_factory=list)  # execute_result / display_data bundles
    error: tuple[str, str, list[str]] | None = None

    @property
    def text(self) -> str:
        """Everything a person would read: streams, then the plain-text form of displays."""
        parts = [self.stdout, *(d.get("text/plain", "") for d in self.data)]
        return "\n".join(p for p in parts if p)

    def raise_for_error(self) -> None:
        if self.error is not None:
            ename, evalue, tb = self.error
            raise RuntimeError(f"cell failed: {ename}: {evalue}\n" + "\n".join(tb))


class Kernel:
    """One kernel process running this interpreter's ipykernel."""

    def __init__(self, cwd: str | None = None, env: dict[str, str] | None = None, timeout: float = 60,
                 log: str | None = None) -> None:
        """Start a kernel in `cwd`; its own stderr (warnings, crashes) goes to the file `log`."""
        full_env = {**os.environ, **LOOPBACK_ENV, **(env or {})}
        cwd = cwd or os.getcwd()
        self._log = open(log or os.devnull, "ab")
        self.manager, self.client = start_new_kernel(
            kernel_name="python3", startup_timeout=timeout, cwd=cwd, env=full_env,
            stdout=self._log, stderr=self._log,
        )

    @property
    def pid(self) -> int:
        provisioner = getattr(self.manager, "provisioner", None)
        process = getattr(provisioner, "process", None) or getattr(self.manager, "kernel", None)
        return process.pid

    def run(self, code: str, timeout: float = 300) -> CellOutput:
        out = CellOutput(status="?")
        shown: dict[str, int] = {}  # display id -> its index in out.data

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            display_id = (content.get("transient") or {}).get("display_id")
            if kind == "stream":
                if content["name"] == "stdout":
                    out.stdout += content["text"]
                else:
                    out.stderr += content["text"]
            elif kind == "update_display_data":  # replaces a display in place, as a frontend does
                if display_id in shown:
                    out.data[shown[display_id]] = content["data"]
            elif kind in ("execute_result", "display_data"):
                if display_id is not None:
                    shown[display_id] = len(out.data)
                out.data.append(content["data"])
            elif kind == "error":
                out.error = (content["ename"], content["evalue"], content["traceback"])

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook, stop_on_error=False)
        out.status = reply["content"]["status"]
        if out.status == "error" and out.error is None:
            c = reply["content"]
            out.error = (c.get("ename", "?"), c.get("evalue", ""), c.get("traceback", []))
        return out

    def send(self, code: str) -> str:
        """Start executing `code` without waiting for it (to kill the kernel mid-cell)."""
        return self.client.execute(code, stop_on_error=False)

    def kill(self) -> None:
        """Die like a disconnected runtime: SIGKILL, nothing flushed, nothing said."""
        os.kill(self.pid, signal.SIGKILL)
        for _ in range(200):
            if not self.manager.is_alive():
                break
            try:
                self.client.get_iopub_msg(timeout=0.01)
            except queue.Empty:
                pass
        self.close()

    def close(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            self.manager.shutdown_kernel(now=True)
        self.manager.cleanup_resources()
        self._log.close()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        except (RuntimeError, OSError):
            pass
