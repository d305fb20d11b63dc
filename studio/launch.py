"""What a frozen (PyInstaller) build needs before anything else runs: multiprocessing's
freeze_support, somewhere for output to go in a windowed build (sys.stdout/sys.stderr are None
there, and transformers' logging and tqdm write to them), and a visible reason when it cannot
start: a log file next to the data home and, where Qt loads, a dialog. Never a silent exit."""

from __future__ import annotations

import collections
import datetime
import importlib
import io
import multiprocessing
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

STARTUP_LOG = "studio-startup.log"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def home_from_argv(argv: Sequence[str]) -> Path:
    """The data home this run will use (--home, else STUDIO_HOME, else the platform dir),
    read before argparse because the failure may happen before argparse is importable."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--home" and i + 1 < len(args):
            return Path(args[i + 1]).expanduser()
        if arg.startswith("--home="):
            return Path(arg.split("=", 1)[1]).expanduser()
    from studio.core.paths import default_home

    return default_home()


def log_path(home: Path) -> Path:
    """`<home>/studio-startup.log`, else beside the home, else the temp dir: the first writable."""
    for folder in (home, home.parent, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / STARTUP_LOG
            with open(path, "a", encoding="utf-8"):
                pass
            return path
        except OSError:
            continue
    return Path(tempfile.gettempdir()) / STARTUP_LOG


class LogStream(io.TextIOBase):
    """Stands in for a missing sys.stdout/sys.stderr: appends to the log and keeps the last lines
    so a windowed app that exits with an error can show them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
        self.tail: collections.deque[str] = collections.deque(maxlen=20)

    def write(self, s: str) -> int:
        self._file.write(s)
        self.tail.extend(line for line in s.splitlines() if line.strip())
        return len(s)

    def flush(self) -> None:
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def fix_missing_stdio(home: Path) -> LogStream | None:
    """Give a windowed build a real stdout/stderr (the log) before transformers or tqdm load."""
    if sys.stdout is not None and sys.stderr is not None:
        return None
    stream = LogStream(log_path(home))
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream
    return stream


def report_failure(message: str, details: str, home: Path, *, dialog: bool) -> Path:
    """Write why the studio could not start to the log; show it in a dialog when asked and Qt loads."""
    path = log_path(home)
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with open(path, "a", encoding="utf-8", errors="replace") as f:
        f.write(f"{stamp} studio could not start: {message}\n{details}\n")
    if dialog and os.environ.get("STUDIO_NO_DIALOG") != "1":
        show_dialog("OpenLedger Studio could not start", f"{message}\n\nDetails: {path}")
    return path


def show_dialog(title: str, text: str) -> bool:
    """A modal error box; False where Qt cannot load (then the log file is all there is).
    Imported by name, as the `gui` command does: the layers below never see Qt."""
    try:
        dialog = importlib.import_module("studio.ui.startup_error")
        return bool(dialog.show(title, text))
    except Exception:  # noqa: BLE001 - a broken bundle may lack Qt; the log still has it
        return False


def run_code(code: str, rest: Sequence[str]) -> int:
    """`<bundle>/studio -c CODE`: a frozen executable is the only Python there is, so children that
    run `sys.executable -c ...` (the GUI's device probe) get what `python -c` would do."""
    sys.argv = ["-c", *rest]
    try:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def launch(entry: str, argv: Sequence[str] | None = None, *, windowed: bool = False) -> int:
    """Run `studio.cli.<entry>` (main or gui_main) the way every entry point should."""
    multiprocessing.freeze_support()
    args = list(sys.argv[1:] if argv is None else argv)
    if is_frozen() and len(args) >= 2 and args[0] == "-c":
        return run_code(args[1], args[2:])
    try:
        home = home_from_argv(args)
    except Exception:  # noqa: BLE001
        home = Path(tempfile.gettempdir())
    stream = fix_missing_stdio(home)
    dialog = windowed or stream is not None
    try:
        import studio.cli as cli

        fn: Callable[..., int] = getattr(cli, entry)
        rc = fn(args) if entry == "main" else fn()
    except SystemExit as e:
        code = e.code
        rc = code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException as e:  # noqa: BLE001 - the last resort: say why, never exit silently
        report_failure(f"{type(e).__name__}: {e}", traceback.format_exc(), home, dialog=dialog)
        return 2
    if rc and stream is not None:
        # Windowed and failed: what went to stderr is invisible, so show it.
        last = "\n".join(list(stream.tail)[-5:]) or f"exit status {rc}"
        report_failure(last, "", home, dialog=dialog)
    return int(rc or 0)
