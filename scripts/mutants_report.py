"""After `mutmut run`: kill rate per module and every surviving mutant (with its diff) written
to bench/out/mutants.txt. `make mutants` runs both; run it alone to re-read the last results:

    .venv/bin/python scripts/mutants_report.py [GLOB ...]   # e.g. 'studio.core.atomic.*'

Reads mutmut's own result files in this process (one `mutmut show` subprocess per survivor
took minutes on a loaded machine). Mutants never run ("not checked") are left out of the rates.
After a sampled run (scripts/mutants_run.py --sample, which writes mutants/sample.txt) each group
also gets its sampled kill rate with a 95 % Wilson interval."""

from __future__ import annotations

import collections
import fnmatch
import io
import math
import re
import sys
import tokenize
from pathlib import Path

OUT = Path("bench/out/mutants.txt")
SAMPLE = Path("mutants/sample.txt")
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}
NOT_RUN = {"not checked", "skipped", "check was interrupted by user"}


def module_of(key: str) -> str:
    # studio.core.blobs.xǁBlobStoreǁput__mutmut_3 / studio.core.atomic.x_write_bytes__mutmut_1
    return re.split(r"\.x[_ǁ]", key, maxsplit=1)[0]


def _tokens(code: str) -> list[tuple[int, str]] | None:
    try:
        toks = tokenize.generate_tokens(io.StringIO(code.strip() + "\n").readline)
        return [(t.type, "STR" if t.type == tokenize.STRING else t.string) for t in toks]
    except (tokenize.TokenError, SyntaxError):
        return None


def kind_of(diff: str) -> str:
    """A first sort of a survivor: "text" when only string literals changed (a message, a
    label), "text->None" when a string became None; "behaviour" otherwise. The explanations
    (docs/mutants.md) are written by a person; this only groups."""
    old = "\n".join(ln[1:] for ln in diff.splitlines() if ln[:1] == "-" and ln[:3] != "---")
    new = "\n".join(ln[1:] for ln in diff.splitlines() if ln[:1] == "+" and ln[:3] != "+++")
    a, b = _tokens(old), _tokens(new)
    if a is not None and a == b:
        return "text"
    if a is not None and b is not None and len(a) == len(b):
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        if pairs and all(x[1] == "STR" and y[1] == "None" for x, y in pairs):
            return "text->None"
    return "behaviour"


def results() -> list[tuple[str, str, Path]]:
    """(mutant, status, mutated file) for every mutant mutmut generated."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    rows = []
    for path in walk_mutatable_files():
        m = SourceFileMutationData(path=path)
        m.load()
        for key, code in m.exit_code_by_key.items():
            rows.append((key, status_by_exit_code[code], path))
    return rows


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of a kill rate k/n (Wilson: stays inside 0..1 and is sound at k = n, where
    the normal approximation gives a zero-width interval). Sampling without replacement from a
    finite module makes the true interval slightly narrower, so this errs wide."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def sample_groups() -> list[tuple[str, int, int]]:
    """(glob, sampled, generated) of the last sampled run, [] after a full one."""
    if not SAMPLE.exists():
        return []
    out = []
    for line in SAMPLE.read_text().splitlines():
        if line.startswith("# group "):
            g, n, total = line.removeprefix("# group ").rsplit(" ", 2)
            out.append((g, int(n), int(total)))
    return out


def group_table(rows: list[tuple[str, str, Path]], groups: list[tuple[str, int, int]]) -> list[str]:
    lines = [
        f"{'group (sampled)':<28} {'generated':>9} {'sampled':>7} {'killed':>6} {'timeout':>7}"
        f" {'survived':>8} {'no tests':>8}  {'kill rate':>9}  95 % CI"
    ]
    for g, n, total in groups:
        st = collections.Counter(
            s for k, s, _ in rows if fnmatch.fnmatch(k, g) and s not in NOT_RUN
        )
        tested = sum(st.values())
        caught = sum(v for s, v in st.items() if s in CAUGHT)
        lo, hi = wilson(caught, tested)
        rate = f"{caught / tested:>9.1%}" if tested else f"{'-':>9}"
        lines.append(
            f"{g:<28} {total:>9} {tested:>7} {st['killed'] + st['caught by type check']:>6}"
            f" {st['timeout'] + st['segfault']:>7} {st['survived'] + st['suspicious']:>8}"
            f" {st['no tests']:>8}  {rate}  {lo:.1%}-{hi:.1%}"
            + ("" if tested == n else f"  ({n - tested} of the sample not run)")
        )
    return lines


def table(rows: list[tuple[str, str, Path]]) -> list[str]:
    by_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for key, status, _ in rows:
        by_module[module_of(key)][status] += 1
    lines = [f"{'module':<40} {'tested':>6}  {'caught':>6}  {'survived':>8}  {'kill rate':>9}"]
    total_t = total_c = 0
    for mod, c in sorted(by_module.items()):
        tested = sum(v for s, v in c.items() if s not in NOT_RUN)
        caught = sum(v for s, v in c.items() if s in CAUGHT)
        if not tested:
            continue
        total_t, total_c = total_t + tested, total_c + caught
        lines.append(
            f"{mod:<40} {tested:>6}  {caught:>6}  {tested - caught:>8}  {caught / tested:>9.1%}"
        )
    if total_t:
        lines.append(
            f"{'all':<40} {total_t:>6}  {total_c:>6}  {total_t - total_c:>8}  {total_c / total_t:>9.1%}"
        )
    return lines


def main(argv: list[str]) -> int:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    rows = results()
    if argv:
        rows = [r for r in rows if any(fnmatch.fnmatch(r[0], g) for g in argv)]
    if not any(status not in NOT_RUN for _, status, _ in rows):
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 1
    head = table(rows)
    groups = sample_groups()
    if groups:
        head += ["", *group_table(rows, groups)]
    survivors = [r for r in rows if r[1] not in CAUGHT | NOT_RUN]
    body: list[str] = []
    kinds: collections.Counter[str] = collections.Counter()
    for key, status, path in survivors:
        try:
            diff = get_diff_for_mutant(key, path=path)
        except Exception as e:  # a stale result file: say so, keep the report
            diff = f"(no diff: {e})"
        kind = status if status != "survived" else kind_of(diff)
        kinds[kind] += 1
        body += [f"## {key} ({status}, {kind})", diff.rstrip(), ""]
    head += ["", "survivors by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))]
    lines = [*head, "", f"surviving mutants ({len(survivors)}):", "", *body]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(head))
    print(f"survivors with diffs: {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
