"""studio doctor and studio demo."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from typing import TYPE_CHECKING, Annotated, Any

from studio import __version__
from studio.commands import arg, operation
from studio.core.results import Check, DoctorReport, Summary

if TYPE_CHECKING:
    from studio.app import Studio


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


@operation("doctor", "Check this machine: Python, torch device, data home, keyring, Qt, anvil.")
def doctor(
    studio: Studio,
    *,
    store: Annotated[
        bool, arg("also re-hash every blob and verify every Datanet (full store check)")
    ] = False,
) -> DoctorReport:
    checks = doctor_checks(str(studio.paths.home))
    checks.append(
        _store_check(studio)
        if store
        else _check("store", True, "not checked: `studio doctor --store` re-hashes every blob")
    )
    report = DoctorReport(version=__version__, checks=tuple(Check.from_dict(c) for c in checks))
    if not checks[-1]["ok"]:
        from studio.core.errors import IntegrityError

        raise IntegrityError(
            "The store check found problems (see the store line above).",
            hint=checks[-1]["fix"],
            result=report,
        )
    return report


def _store_check(studio: Studio) -> dict[str, Any]:
    res = studio.datanets.verify_store()
    shown = []
    for p in res["problems"][:3]:
        where = f"record #{p['record_id']}" if "record_id" in p else f"blob {p.get('blob', '')}"
        shown.append(f"{p.get('datanet', 'store')} {where}: {p['problem']}")
    more = f"; {len(res['problems']) - 3} more" if len(res["problems"]) > 3 else ""
    damaged = sorted({p["datanet"] for p in res["problems"] if "datanet" in p})
    fix = "Restore the data home from a backup, or re-add the affected files" + (
        f" (studio datanet verify {damaged[0]} lists them)." if damaged else "."
    )
    detail = (
        f"{res['datanets_checked']} Datanet(s), {res['blobs_checked']} blob(s) re-hashed,"
        f" {len(res['problems'])} problem(s)"
    ) + (": " + "; ".join(shown) + more if shown else "")
    return _check("store", res["ok"], detail, fix)


@operation("demo", "Run the end-to-end demo on the embedded devnet, printing each step.")
def demo(
    studio: Studio,
    *,
    fresh: Annotated[bool, arg("start from an empty data home")] = False,
    skip: Annotated[str, arg("comma-separated stages to skip: chain,train,attribution")] = "",
) -> Summary:
    from studio.demo import run_demo

    return Summary(run_demo(studio, fresh=fresh, skip={s for s in skip.split(",") if s}))
