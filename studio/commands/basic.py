"""studio doctor and studio demo."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
from typing import Any

from studio import __version__
from studio.commands import Context, arg, command


def _check(name: str, ok: bool, detail: str, fix: str = "") -> dict[str, Any]:
    return {"check": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def doctor_checks(home: str | None) -> list[dict[str, Any]]:
    from studio.core.paths import Paths

    checks = [
        _check(
            "python",
            sys.version_info >= (3, 11),
            f"{platform.python_version()} ({sys.executable})",
            "Install Python 3.11 or newer.",
        )
    ]
    try:
        paths = Paths.resolve(home)
        writable = os.access(paths.home, os.W_OK)
        checks.append(
            _check("data home", writable, str(paths.home), "Pass --home DIR or set STUDIO_HOME.")
        )
        checks.append(_check("log file", True, str(paths.logs / "studio.log")))
    except Exception as e:  # noqa: BLE001
        checks.append(_check("data home", False, str(e), "Pass --home DIR or set STUDIO_HOME."))
    # torch and its device, without importing it when absent.
    if importlib.util.find_spec("torch") is None:
        checks.append(
            _check("torch", False, "not installed", "Run `make setup` (installs torch==2.13.0).")
        )
    else:
        try:
            from studio.train.device import describe_device

            dev = describe_device()
            checks.append(_check("torch", True, dev))
        except ImportError:
            import torch

            dev = "cuda" if torch.cuda.is_available() else "cpu"
            checks.append(_check("torch", True, f"torch {torch.__version__}, device {dev}"))
    # keyring: usable only with a real backend (fail/plaintext backends are refused).
    try:
        from studio.chain.keyring_store import keyring_status

        ok, detail = keyring_status()
    except ImportError:
        try:
            import keyring

            be = keyring.get_keyring()
            name = f"{type(be).__module__}.{type(be).__name__}"
            ok = "fail" not in name.lower() and "plaintext" not in name.lower()
            detail = name
        except Exception as e:  # noqa: BLE001
            ok, detail = False, str(e)
    checks.append(
        _check(
            "keyring",
            ok,
            detail,
            "No OS keyring here: the studio will ask for the keystore password "
            "(or use --password-file when headless).",
        )
    )
    # Qt
    if importlib.util.find_spec("PySide6") is None:
        checks.append(
            _check("Qt", False, "PySide6 not installed", "pip install 'openledger-studio[gui]'.")
        )
    else:
        plat = os.environ.get("QT_QPA_PLATFORM") or (
            "wayland/xcb" if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else ""
        )
        ok = bool(plat) or sys.platform in ("win32", "darwin")
        checks.append(
            _check(
                "Qt",
                ok,
                f"PySide6 installed, platform {plat or 'none (no display)'}",
                "No display: use QT_QPA_PLATFORM=offscreen for screenshots, or run headless (studio node run).",
            )
        )
    # anvil
    try:
        from studio.chain.devnet import find_anvil

        path = find_anvil()
        checks.append(_check("anvil", True, str(path)))
    except ImportError:
        checks.append(_check("anvil", False, "chain layer not installed", "Run `make setup`."))
    except Exception as e:  # noqa: BLE001
        checks.append(
            _check("anvil", False, str(e), "Run `make setup` (npm install) or set STUDIO_ANVIL.")
        )
    return checks


@command(
    "doctor",
    "Check this machine: Python, torch device, data home, keyring, Qt, anvil.",
    arg(
        "--store",
        action="store_true",
        help="also re-hash every blob and verify every Datanet (full store check)",
    ),
)
def doctor(ctx: Context, args: argparse.Namespace) -> Any:
    checks = doctor_checks(ctx.home)
    if args.store:
        res = ctx.studio.datanets.verify_store()
        for p in res["problems"][:20]:
            where = f"record #{p['record_id']}" if "record_id" in p else f"blob {p.get('blob', '')}"
            ctx.say(f"  !! {p.get('datanet', 'store')}: {where}: {p['problem']}")
        checks.append(
            _check(
                "store",
                res["ok"],
                f"{res['datanets_checked']} Datanet(s), {res['blobs_checked']} blob(s) re-hashed,"
                f" {len(res['problems'])} problem(s)",
                "Restore the data home from a backup, or re-add the affected files"
                " (studio datanet verify NAME lists them).",
            )
        )
    else:
        checks.append(
            _check("store", True, "not checked: `studio doctor --store` re-hashes every blob")
        )
    ctx.say(f"OpenLedger Studio {__version__}")
    for c in checks:
        mark = "ok " if c["ok"] else "!! "
        ctx.say(f"  {mark}{c['check']:<10} {c['detail']}")
        if c["fix"]:
            ctx.say(f"      → {c['fix']}")
    result = {"version": __version__, "checks": checks}
    if args.store and not checks[-1]["ok"]:
        from studio.core.errors import IntegrityError

        ctx.emit_result(result)
        raise IntegrityError(
            "The store check found problems (listed above).", hint=checks[-1]["fix"]
        )
    return result


@command(
    "demo",
    "Run the end-to-end demo on the embedded devnet, printing each step.",
    arg("--fresh", action="store_true", help="start from an empty data home"),
    arg("--skip", default="", help="comma-separated stages to skip: chain,train,attribution"),
)
def demo(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.demo import run_demo

    return run_demo(ctx, fresh=args.fresh, skip={s for s in args.skip.split(",") if s})
