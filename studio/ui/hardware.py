"""What training will run on, asked of a short child process: importing torch in the window
would cost seconds of GIL time and hundreds of MB that the idle window does not need."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, QProcess

PROBE = (
    "import json, os, torch\n"
    "from studio.train.device import choose_device\n"
    "d = choose_device()\n"
    "mem = 0\n"
    "try:\n"
    "    mem = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')\n"
    "except (ValueError, OSError, AttributeError):\n"
    "    pass\n"
    "print(json.dumps({'device': d.device, 'dtype': d.dtype, 'reason': d.reason,"
    " 'torch': torch.__version__, 'cuda': torch.version.cuda, 'memory': mem}))\n"
)

_cache: dict[str, object] | None = None
_waiting: list[tuple[Callable[[dict[str, object]], None], QObject | None]] = []
_proc: QProcess | None = None


def describe(info: dict[str, object]) -> str:
    if "error" in info:
        return f"unknown ({info['error']})"
    build = f"CUDA {info['cuda']} build" if info.get("cuda") else "CPU build"
    mem = int(info.get("memory") or 0)
    ram = f"; memory {mem / 2**30:.1f} GiB" if mem else ""
    return (
        f"{info['device']} ({info['dtype']}), torch {info['torch']} {build}{ram} — {info['reason']}"
    )


def probe(callback: Callable[[dict[str, object]], None], parent: QObject | None = None) -> None:
    """Call back (on the GUI thread) with the device info; the child runs once per window."""
    global _proc
    if _cache is not None:
        callback(_cache)
        return
    _waiting.append((callback, parent))
    if _proc is not None:
        return
    _proc = QProcess()  # no parent: it outlives the page that asked
    _proc.finished.connect(_finished)
    _proc.start(sys.executable, ["-c", PROBE])


def _finished(*_a: object) -> None:
    global _cache, _proc
    if _proc is None or not shiboken6.isValid(_proc):
        return  # the application is shutting down
    out = bytes(_proc.readAllStandardOutput().data()).decode(errors="replace").strip()
    err = bytes(_proc.readAllStandardError().data()).decode(errors="replace").strip()
    try:
        _cache = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        _cache = {"error": (err.splitlines() or ["no answer"])[-1][:200]}
    _proc.deleteLater()
    _proc = None
    waiting = _waiting[:]
    _waiting.clear()
    for cb, owner in waiting:
        if owner is None or shiboken6.isValid(owner):
            cb(_cache)
