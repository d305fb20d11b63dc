#!/usr/bin/env bash
# Linux bundle: dist/studio/ (PyInstaller one-folder), then a .tar.xz and a .deb in dist/
# (PACK=fast: a .tar.zst and a zstd .deb, for CI).
#   installers/linux/build.sh
# Needs: python3 (3.11+), node_modules (npm ci), dpkg-deb, xz, zstd, binutils (strip, readelf);
# desktop-file-validate is optional.
#
# What is cached between runs on one machine (STUDIO_BUILD_CACHE, default
# ~/.cache/openledger-studio), and why that is safe:
#   build-venv-<key>/  the build venv, installed only from the hashed lock with --require-hashes
#                      --no-deps. <key> is the sha256 of the lock file, the Python version and the
#                      machine: any change to a pin or a hash makes a new venv. A venv is used only
#                      once its `.complete` mark exists (written last), so a half-built one is
#                      rebuilt, never used. The project itself is never installed into it: it is
#                      analysed from a fresh copy of studio/ (build/stage), so no build leaves
#                      anything behind in the venv.
#   pyinstaller/       PyInstaller's own cache (PYINSTALLER_CONFIG_DIR), kept out of ~/.config: its
#                      bincache holds processed (stripped/signed) binaries, each checked against
#                      the digest of its source. On Linux it stays empty (PyInstaller strips
#                      nothing; strip_all below does, every build).
# The PyInstaller work folder (build/pyinstaller) and dist/ are rebuilt from scratch every time.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCK=installers/requirements-build.txt
CACHE=${STUDIO_BUILD_CACHE:-$HOME/.cache/openledger-studio}
KEY=$( { cat "$LOCK"; python3 -VV; uname -m; } | sha256sum | cut -c1-16)
VENV=${VENV:-$CACHE/build-venv-$KEY}
PY=$VENV/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYINSTALLER_CONFIG_DIR=$CACHE/pyinstaller
# Reproducible: timestamps in the bundle, the tarball and the .deb come from the last commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export PYTHONHASHSEED=0
t0=$(date +%s)

# Symbol tables (libtorch_cpu alone carries ~90 MB, libpython 17, pydivsufsort 10): strip every
# shared library and program that still has one, then load each stripped library in the frozen
# bundle and put back the original of any that no longer loads. strip on a patchelf-edited
# (auditwheel-repaired) library, as in numpy.libs/scipy.libs, can leave it unloadable ("ELF load
# command address/offset not page-aligned"); the check finds those instead of a list guessing them.
strip_all() {
  local i=dist/studio/_internal keep=build/strip-orig f
  rm -rf "$keep" && mkdir -p "$keep"
  : > build/stripped.txt
  while IFS= read -r -d '' f; do
    # grep reads all (no -q): an early exit would SIGPIPE readelf and, with pipefail, skip the file.
    readelf -S "$f" 2>/dev/null | grep '\.symtab' > /dev/null || continue
    mkdir -p "$keep/$(dirname "$f")" && cp -p "$f" "$keep/$f"
    if strip --strip-unneeded "$f" 2>/dev/null; then echo "$f" >> build/stripped.txt; fi
  done < <(find "$i" -type f \( -name '*.so' -o -name '*.so.*' -o -path '*/bin/anvil' \) -size +64k -print0)
  # Load each stripped library in the frozen bundle (dlopen itself: the frozen ctypes rewords its
  # errors). A broken one fails with an ELF error naming it, and so does everything linked to it:
  # put back the originals of the files named, then check again until all load.
  local round broken
  for round in 1 2 3; do
    broken=$(dist/studio/studio -c '
import _ctypes, os, re
for line in open("build/stripped.txt"):
    path = line.strip()
    if path.endswith("/anvil"):  # a program: the smoke test runs it
        continue
    try:
        _ctypes.dlopen(os.path.abspath(path), os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError as e:
        m = re.match(r"(\S+?): ELF ", str(e))
        if m:
            print(os.path.basename(m.group(1)))
' | sort -u) || { echo "strip check failed to run" >&2; exit 1; }
    [ -z "$broken" ] && break
    [ "$round" = 3 ] && { echo "strip: still unloadable: $broken" >&2; exit 1; }
    for f in $broken; do
      grep "/$f\$" build/stripped.txt | while IFS= read -r g; do
        cp -p "$keep/$g" "$g" && echo "  strip: kept the original of $g (stripped, it did not load)"
        sed -i "\|^$g\$|d" build/stripped.txt
      done
    done
  done
  echo "strip: $(wc -l < build/stripped.txt) files stripped"
  rm -rf "$keep"
}

if [ ! -f "$VENV/.complete" ]; then
  echo "build venv: creating $VENV from $LOCK (first run for this lock: a few minutes)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  # Bytecode is compiled after the install on every core (pip compiles file by file, on one:
  # half of the install's CPU time); compile errors are ignored, as pip ignores them.
  "$PY" -m pip install -q --no-compile --require-hashes --no-deps -r "$LOCK"
  "$PY" -m compileall -q -j0 "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    > /dev/null || true
  touch "$VENV/.complete"
else
  echo "build venv: cached $VENV"
fi
test -d node_modules/@foundry-rs || { echo "node_modules missing: run npm ci" >&2; exit 1; }

# The sources PyInstaller analyses: a snapshot, so edits or a merge during the build cannot mix in.
STAGE=$PWD/build/stage
rm -rf "$STAGE" && mkdir -p "$STAGE"
tar --exclude=__pycache__ -cf - studio | tar -C "$STAGE" -xf -
export STUDIO_STAGE=$STAGE PYTHONPATH=$STAGE
VERSION=$("$PY" -c 'import studio; print(studio.__version__)')
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
t1=$(date +%s)
if [ "${1:-}" != --package-only ]; then  # --package-only: re-pack an existing dist/studio
  # A fresh work folder every time; no --clean, which would also empty PyInstaller's cache.
  rm -rf build/pyinstaller dist/studio
  "$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller installers/studio.spec
  # One executable for both entry points on Linux (studio.spec): the GUI is the name it starts by.
  ln -sfn studio dist/studio/studio-gui
  strip_all
fi
t2=$(date +%s)
echo "pyinstaller: $((t2 - t1))s"

# Compression. PACK=release (default): a .tar.xz and an xz .deb (Debian's default), the smallest
# of the standard formats (xz -9, multi-threaded). PACK=fast (CI): a .tar.zst and a zstd .deb at
# level 1, packed in seconds: CI checks that they install and run, not how small they are.
case ${PACK:-release} in
  release) EXT=tar.xz; COMPRESS=(xz -T0 -9); DEB_Z=(-Zxz -z9) ;;
  fast) EXT=tar.zst; COMPRESS=(zstd -q -T0 -1); DEB_Z=(-Zzstd -z1) ;;
  *) echo "PACK must be release or fast" >&2; exit 1 ;;
esac
rm -f dist/openledger-studio-*-linux-*.tar.*
TARBALL=dist/openledger-studio-$VERSION-linux-$ARCH.$EXT
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C dist -cf - studio | "${COMPRESS[@]}" > "$TARBALL"
t3=$(date +%s)

# .deb: /opt/openledger-studio + /usr/bin symlinks + desktop entry + icon, built with dpkg-deb.
PKG=build/deb/openledger-studio
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
  "$PKG/usr/share/icons/hicolor/scalable/apps"
# Hard links: no second copy of the bundle on disk (nothing below writes to the files).
cp -al "$PWD/dist/studio" "$PKG/opt/openledger-studio"
ln -s /opt/openledger-studio/studio "$PKG/usr/bin/studio"
ln -s /opt/openledger-studio/studio-gui "$PKG/usr/bin/studio-gui"
cp installers/linux/openledger-studio.desktop "$PKG/usr/share/applications/"
cp resources/icons/studio.svg "$PKG/usr/share/icons/hicolor/scalable/apps/openledger-studio.svg"
SIZE_KB=$(du -sk "$PKG" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE_KB/" \
  installers/linux/control.in > "$PKG/DEBIAN/control"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$PKG/usr/share/applications/openledger-studio.desktop"
fi
find "$PKG" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f dist/openledger-studio_*.deb
DEB=dist/openledger-studio_${VERSION}_$ARCH.deb
# dpkg-deb's xz is multi-threaded; zstd members need dpkg >= 1.21.18 (Debian 12, Ubuntu 21.10).
dpkg-deb --root-owner-group "${DEB_Z[@]}" --build "$PKG" "$DEB" >/dev/null
rm -rf "$PKG"
t4=$(date +%s)

"$PY" installers/size_report.py dist/studio "$TARBALL" "$DEB" | tee dist/size-report.txt
echo "times: venv+stage $((t1 - t0))s, pyinstaller $((t2 - t1))s," \
  "tarball $((t3 - t2))s, deb $((t4 - t3))s, total $((t4 - t0))s"
# CPU seconds (user, system) of this script's children: comparable across loads, unlike the above.
echo "cpu seconds (user system: this shell, then its children):"
times
