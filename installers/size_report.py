"""Where the bundle's bytes go: its size on disk, each archive's size, the top entries of the
bundle's data folder (`_internal/`: a package folder or a file) and its largest files.

    python installers/size_report.py dist/studio [dist/*.tar.xz dist/*.deb] [--top 15]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

MB = 1024 * 1024


def disk_size(path: Path) -> int:
    """Bytes a path takes: its files' sizes (links counted once, as links)."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum((Path(root) / f).lstat().st_size for f in files)
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("archives", type=Path, nargs="*")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    total = disk_size(args.bundle)
    print(f"bundle {args.bundle}: {total / MB:.0f} MB on disk")
    for archive in args.archives:
        size = archive.stat().st_size
        print(f"  {archive.name}: {size / MB:.0f} MB ({size / total:.0%} of the bundle)")
    internal = args.bundle / "_internal"
    root = internal if internal.is_dir() else args.bundle
    entries = sorted(((disk_size(p), p.name) for p in root.iterdir()), reverse=True)
    print(f"top {args.top} entries of {root.name}/ (of {len(entries)}):")
    for size, name in entries[: args.top]:
        print(f"  {size / MB:8.1f} MB  {size / total:5.1%}  {name}")
    files = sorted(
        ((p.lstat().st_size, p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
        reverse=True,
    )
    print(f"largest {args.top} files:")
    for size, rel in files[: args.top]:
        print(f"  {size / MB:8.1f} MB  {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
