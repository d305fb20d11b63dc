"""`make mutants`: generate the mutants, then run all of them, or a seeded uniform random sample
of each group, with `mutmut run`:

    .venv/bin/python scripts/mutants_run.py [--sample N --seed S [--cut GROUP=K ...]] [--jobs J]
        [GLOB ...]

A group is one GLOB (e.g. 'studio.chain.tx*'); without GLOBs, one group per `only_mutate` area in
pyproject.toml (all of core is one group). `--sample N` draws N mutants of each group (all of it
when it has fewer) with random.Random(S) from the sorted names, so the same source and seed give
the same sample on any machine; the names go to mutants/sample.txt and mutmut runs just those.
`--cut GROUP=K` keeps a seeded uniform K of that group's N (a sub-sample is still uniform).
scripts/mutants_report.py then gives each group's kill rate with a 95 % confidence interval.

Run it from the project root with PYTHONPATH=./mutants (the Makefile recipe does)."""

from __future__ import annotations

import argparse
import fnmatch
import os
import random
import sys
import tomllib
from pathlib import Path

SAMPLE = Path("mutants/sample.txt")


def default_groups() -> list[str]:
    # "studio/chain/tx*" -> "studio.chain.tx*" (mutant names are dotted): one group per area
    cfg = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]
    return [p.replace("/", ".") for p in cfg["only_mutate"]]


def generate() -> list[str]:
    """The names of every mutant, generating them as `mutmut run` does (unchanged files kept)."""
    from mutmut.__main__ import create_mutants, store_lines_covered_by_tests
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import (
        copy_also_copy_files,
        copy_src_dir,
        setup_source_paths,
        walk_mutatable_files,
    )

    set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    store_lines_covered_by_tests()
    create_mutants(os.cpu_count() or 2)
    names = []
    for path in walk_mutatable_files():
        m = SourceFileMutationData(path=path)
        m.load()
        names += m.exit_code_by_key
    return sorted(names)


def draw(
    names: list[str], groups: list[str], n: int, seed: int, cut: dict[str, int] | None = None
) -> dict[str, list[str]]:
    """n names per group (a name goes to the first group it matches), sorted for the record.
    `cut` {group: k}: of that group's n, a uniform k (a seeded shuffle of the n, its first k),
    so a run that cannot finish the n on a loaded box still measures a uniform sample."""
    rng = random.Random(seed)
    picked: dict[str, list[str]] = {}
    taken: set[str] = set()
    for g in groups:
        pool = [k for k in names if k not in taken and fnmatch.fnmatch(k, g)]
        chosen = sorted(rng.sample(pool, min(n, len(pool))))
        taken.update(chosen)
        if cut and g in cut:
            order = list(chosen)
            random.Random(f"{seed}:{g}").shuffle(order)
            chosen = sorted(order[: cut[g]])
        picked[g] = chosen
    return picked


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("globs", nargs="*", help="mutant name globs, e.g. 'studio.core.atomic.*'")
    ap.add_argument("--sample", type=int, default=0, help="mutants per group (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="mutmut --max-children")
    ap.add_argument(
        "--cut",
        nargs="*",
        default=[],
        metavar="GROUP=K",
        help="keep a uniform K of a group's sample",
    )
    ap.add_argument("--dry-run", action="store_true", help="write the sample, run nothing")
    a = ap.parse_args(argv)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    cmd = [mutmut, "run", "--max-children", str(a.jobs)]
    if not a.sample:
        if a.dry_run:
            return 0
        os.execv(mutmut, cmd + a.globs)
    groups = a.globs or default_groups()
    names = generate()
    cut = {g: int(k) for g, _, k in (c.rpartition("=") for c in a.cut)}
    picked = draw(names, groups, a.sample, a.seed, cut)
    lines = [f"# seed {a.seed}, {a.sample} per group"]
    for g, chosen in picked.items():
        total = sum(fnmatch.fnmatch(k, g) for k in names)
        print(f"{g}: {len(chosen)} of {total} mutants")
        lines += [f"# group {g} {len(chosen)} {total}", *chosen]
    SAMPLE.write_text("\n".join(lines) + "\n")
    chosen_all = [k for c in picked.values() for k in c]
    if not chosen_all:
        print("no mutant matches", groups, file=sys.stderr)
        return 1
    if a.dry_run:
        print(f"sample: {SAMPLE}")
        return 0
    os.execv(mutmut, cmd + chosen_all)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
