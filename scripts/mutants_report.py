"""After `mutmut run`: kill rate per module and every surviving mutant (with its diff) written
to bench/out/mutants.txt. `make mutants` runs both; run it alone to re-read the last results."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

OUT = Path("bench/out/mutants.txt")
MUTMUT = [str(Path(sys.executable).with_name("mutmut"))]
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}
NOT_RUN = {"not checked", "skipped", "check was interrupted by user"}


def module_of(key: str) -> str:
    # studio.core.blobs.xǁBlobStoreǁput__mutmut_3 / studio.core.atomic.x_write_bytes__mutmut_1
    return re.split(r"\.x[_ǁ]", key, maxsplit=1)[0]


def main() -> int:
    res = subprocess.run([*MUTMUT, "results", "--all", "true"], capture_output=True, text=True)
    rows = [ln.strip().rsplit(": ", 1) for ln in res.stdout.splitlines() if ": " in ln]
    if not rows:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 1
    by_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    survivors = []
    for key, status in rows:
        by_module[module_of(key)][status] += 1
        if status not in CAUGHT | NOT_RUN:
            survivors.append((key, status))
    lines = ["module                                   tested  caught  survived  kill rate"]
    total_t = total_c = 0
    for mod, c in sorted(by_module.items()):
        tested = sum(v for s, v in c.items() if s not in NOT_RUN)
        caught = sum(v for s, v in c.items() if s in CAUGHT)
        if not tested:
            continue
        total_t, total_c = total_t + tested, total_c + caught
        lines.append(
            f"{mod:<40} {tested:>6}  {caught:>6}  {tested - caught:>8}  {caught / tested:>8.1%}"
        )
    if total_t:
        lines.append(
            f"{'all':<40} {total_t:>6}  {total_c:>6}  {total_t - total_c:>8}  {total_c / total_t:>8.1%}"
        )
    lines += ["", f"surviving mutants ({len(survivors)}):", ""]
    for key, status in survivors:
        diff = subprocess.run([*MUTMUT, "show", key], capture_output=True, text=True).stdout
        lines += [f"## {key} ({status})", diff.rstrip(), ""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: len(by_module) + 2]))
    print(f"survivors with diffs: {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
