"""Pick the fast index's settings per family on held-out seeds only, then report them on the
evaluation seeds beside the default and EK-FAC.

Input: the JSON of a bench/attribution_families.py run with ``--methods ours-grid
kronfluence-ekfac`` over both the held-out and the evaluation seeds, e.g.

    nice -n 15 .venv/bin/python bench/attribution_families.py --families targets datanet size \\
        --seeds 10 11 0 1 2 --subsets 6 --epochs 2 --drops 0.05 \\
        --methods ours-grid kronfluence-ekfac --json grid.json
    .venv/bin/python bench/attribution_grid_pick.py grid.json --held-out 10 11 --eval 0 1 2

The choice maximises the mean usual-setting LDS over the held-out seeds; the evaluation seeds
never enter it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT = "ours[d=0.1,p=128,B]"  # studio's GradientConfig defaults
EKFAC = "kronfluence-ekfac"


def _stat(runs: list[dict[str, Any]], name: str, key: str) -> tuple[float, float]:
    vals = [r["methods"][name][key] for r in runs if key in r["methods"].get(name, {})]
    return (float(np.mean(vals)), float(np.std(vals))) if vals else (float("nan"), 0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json")
    ap.add_argument("--held-out", type=int, nargs="+", default=[10, 11])
    ap.add_argument("--eval", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    runs = json.loads(Path(args.json).read_text())["runs"]
    for fam in sorted({r["family"] for r in runs}):
        held = [r for r in runs if r["family"] == fam and r["seed"] in args.held_out]
        ev = [r for r in runs if r["family"] == fam and r["seed"] in args.eval]
        if not held or not ev:
            print(f"{fam}: needs both held-out and evaluation seeds")
            continue
        tags = [t for t in held[0]["methods"] if t.startswith("ours[")]
        best = max(tags, key=lambda t: _stat(held, t, "lds_usual")[0])
        print(
            f"{fam}: chosen on seeds {' '.join(str(r['seed']) for r in held)}: {best} "
            f"(held-out LDS usual {_stat(held, best, 'lds_usual')[0]:.3f}, default "
            f"{_stat(held, DEFAULT, 'lds_usual')[0]:.3f})"
        )
        keys = [k for k in ev[0]["methods"].get(DEFAULT, {}) if k.startswith(("lds", "single"))]
        for name in (DEFAULT, best, EKFAC):
            cells = "  ".join(f"{k} {m:.3f}±{s:.2f}" for k in keys for m, s in [_stat(ev, name, k)])
            print(
                f"  seeds {' '.join(str(r['seed']) for r in ev)}  {name:<24} {cells}  "
                f"canary@1 {_stat(ev, name, 'canary@1')[0]:.2f}  "
                f"cpu ms/query {_stat(ev, name, 'query_cpu_ms')[0]:.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
