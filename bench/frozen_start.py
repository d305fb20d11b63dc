"""Cold start of the frozen bundle against the same code run from the venv, measured in the same
invocation and printed as a ratio (frozen / source):

- `studio --version`: the frozen console executable against `python -m studio --version`;
- the GUI to its first painted window: the frozen `studio-gui` against `python -m studio gui`,
  each quitting at its first paint (STUDIO_GUI_FIRST_PAINT_FILE, the hook bench/gui.py uses),
  offscreen, on one data home set up by a warm-up run of each.

Runs alternate (source, frozen, source, ...) so a change in the machine's load hits both; the
median of each is printed, with the load average.

    .venv/bin/python bench/frozen_start.py [--bundle dist/studio] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.time()
    subprocess.run(
        cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300
    )
    return time.time() - t0


def _first_paint(cmd: list[str], env: dict[str, str], mark: Path) -> float:
    mark.unlink(missing_ok=True)
    t0 = time.time()
    subprocess.run(
        cmd,
        check=True,
        env={**env, "STUDIO_GUI_FIRST_PAINT_FILE": str(mark)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return float(json.loads(mark.read_text())["t"]) - t0


def _pair(source, frozen, runs: int) -> tuple[float, float]:
    source(), frozen()  # warm-up: the page cache, the data home's first-run set-up
    s, f = [], []
    for _ in range(runs):
        s.append(source())
        f.append(frozen())
    return statistics.median(s), statistics.median(f)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, default=REPO / "dist" / "studio")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cli, gui = args.bundle / "studio", args.bundle / "studio-gui"
    if not (cli.is_file() and gui.is_file()):
        print(f"no bundle at {args.bundle}: run make installer", file=sys.stderr)
        return 1
    home = Path(tempfile.mkdtemp(prefix="bench-frozen-"))
    env = {
        **os.environ,
        "STUDIO_HOME": str(home / "home"),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    source = [sys.executable, "-m", "studio"]
    # One data home each: the checkout may be newer than the bundle and migrate a shared one
    # past what the bundle knows.
    src_env, frz_env = ({**env, "STUDIO_HOME": str(home / name)} for name in ("source", "frozen"))
    mark = home / "paint.json"
    rows = [
        (
            "studio --version",
            *_pair(
                lambda: _run([*source, "--version"], src_env),
                lambda: _run([str(cli), "--version"], frz_env),
                args.runs,
            ),
        ),
        (
            "GUI to first paint",
            *_pair(
                lambda: _first_paint([*source, "gui"], src_env, mark),
                lambda: _first_paint([str(gui)], frz_env, mark),
                args.runs,
            ),
        ),
    ]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {args.runs} runs each")
    print(f"{'cold start':22} {'python -m studio':>17} {'frozen':>9} {'frozen/source':>14}")
    for label, s, f in rows:
        print(f"{label:22} {s:16.2f}s {f:8.2f}s {f / s:13.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
