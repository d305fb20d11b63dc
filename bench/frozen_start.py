"""Cold start of the frozen `studio --version` against `python -m studio --version` from the venv,
and the frozen GUI to its first painted window (`studio gui --screenshots`, offscreen), each as a
ratio against the source run measured in the same invocation.

    python bench/frozen_start.py [--bundle dist/studio] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="dist/studio")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    frozen = Path(args.bundle) / "studio"
    if not frozen.is_file():
        print(f"no bundle at {frozen}: run make installer", file=sys.stderr)
        return 1
    home = tempfile.mkdtemp(prefix="bench-frozen-")
    env = {**os.environ, "STUDIO_HOME": home, "QT_QPA_PLATFORM": "offscreen"}
    source = [sys.executable, "-m", "studio"]
    rows = []
    for label, extra in (("--version", ["--version"]),):
        s = _time([*source, *extra], args.runs, env)
        f = _time([str(frozen), *extra], args.runs, env)
        rows.append((label, s, f))
    shots = Path(home) / "shots"
    s = _time([*source, "gui", "--screenshots", str(shots)], 1, env)
    f = _time([str(frozen), "gui", "--screenshots", str(shots)], 1, env)
    rows.append(("gui --screenshots (every page, light+dark)", s, f))
    print(f"{'command':45} {'python -m studio':>17} {'frozen':>9} {'frozen/source':>14}")
    for label, s, f in rows:
        print(f"{label:45} {s:16.2f}s {f:8.2f}s {f / s:13.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
