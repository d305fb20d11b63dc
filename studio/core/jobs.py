"""Long work (training, index builds) runs in a subprocess of our own executable and streams one
JSON object per line on stdout, so a crash or cancel never takes the UI down, and a frozen
(PyInstaller) build behaves the same as `python -m studio`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from studio.core.events import Event, current_operation


def pid_alive(pid: int | None) -> bool:
    """Whether a process runs. A zombie (exited, not yet reaped by its parent) does not."""
    if not pid or pid <= 0:
        return False
    if sys.platform == "win32":
        return True  # no cheap probe; callers confirm another way (RPC, job heartbeat)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# Environment variables that hold secrets: never handed to a child process.
SECRET_ENV_VARS = ("STUDIO_PASSWORD",)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for any child process (anvil, xdg-open, git, our own jobs). A frozen
    bundle's bootloader points LD_LIBRARY_PATH at its own libraries (a bundled libreadline breaks
    /bin/sh); it keeps the user's value in LD_LIBRARY_PATH_ORIG, so put that back."""
    # Never a secret (STUDIO_PASSWORD): anvil outlives us, and /proc/PID/environ is readable.
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS}
    if "LD_LIBRARY_PATH_ORIG" in env:
        env["LD_LIBRARY_PATH"] = env.pop("LD_LIBRARY_PATH_ORIG")
    elif getattr(sys, "frozen", False):
        env.pop("LD_LIBRARY_PATH", None)
    env.update(extra or {})
    return env


def own_executable() -> list[str]:
    """argv prefix that runs this studio: the frozen binary itself, or this Python with -m studio."""
    if getattr(sys, "frozen", False):
        # From the windowed studio-gui, jobs run the console `studio` beside it (real stdio).
        exe = Path(sys.executable)
        console = exe.with_name(exe.name.replace("studio-gui", "studio"))
        return [str(console if console.is_file() else exe)]
    return [sys.executable, "-m", "studio"]


class JobStream:
    """Emits events as JSON lines on a stream. Used inside the job subprocess."""

    def __init__(self, out: IO[str] | None = None, job: str = "") -> None:
        self.out = out or sys.stdout
        self.job = job
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if not event.job:
            event.job = self.job
        line = json.dumps(event.to_dict(), sort_keys=True, default=str)
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()


# Environment variables that hold secrets: never handed to a child process.
def child_environment() -> dict[str, str]:
    """os.environ for a child process, without the secret variables (see child_env)."""
    return child_env()


class JobProcess:
    """A running job subprocess; read its events, cancel it, wait for it."""

    op = ""  # the operation id its events are re-tagged with

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        full_env = child_env(env)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        # The job's events belong to the operation that started it (the child has its own ids).
        self.op = current_operation()
        self._stderr_file = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*own_executable(), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            text=True,
            bufsize=1,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self) -> Any:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                ev = Event.from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue
            if self.op:
                ev.op = self.op
            yield ev

    def follow(self, on_event: Callable[[Event], None]) -> int:
        for ev in self.events():
            on_event(ev)
        return self.wait()

    def cancel(self) -> None:
        # SIGINT first: the job catches it, finishes its step and saves a checkpoint.
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout)
        if hasattr(self._stderr_file, "close"):
            self._stderr_file.close()  # type: ignore[union-attr]
        return rc
