#!/usr/bin/env bash
# Linux bundle: dist/studio/ (PyInstaller one-folder), then a .tar.gz (or .tar.xz) and a .deb in dist/.
#   installers/linux/build.sh
# Needs: python3 (3.11+), node_modules (npm ci), dpkg-deb, zstd; desktop-file-validate is optional.
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
#                      nothing; strip_large below does, every build).
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

# Symbol tables of the largest libraries (libtorch_cpu alone carries ~90 MB). Only these: strip on
# the auditwheel-patched libraries (numpy.libs, scipy.libs) leaves them unloadable.
strip_large() {
  local i=dist/studio/_internal f
  for f in "$i"/torch/lib/libtorch_cpu.so "$i"/torch/lib/libtorch_python.so \
    "$i"/pyarrow/libarrow.so.* "$i"/pyarrow/libarrow_compute.so.* "$i"/pyarrow/libparquet.so.* \
    "$i"/pyarrow/libarrow_substrait.so.* "$i"/node_modules/@foundry-rs/*/bin/anvil; do
    if [ -f "$f" ]; then strip --strip-unneeded "$f"; fi
  done
}

if [ ! -f "$VENV/.complete" ]; then
  echo "build venv: creating $VENV from $LOCK (first run for this lock: a few minutes)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --require-hashes --no-deps -r "$LOCK"
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
  strip_large
fi
t2=$(date +%s)
echo "pyinstaller: $((t2 - t1))s"

# The tarball: sorted, fixed owner and mtime. gzip by default (what has been measured: 464 MB);
# TAR_COMPRESS=xz for a smaller one that takes several times longer to pack on 2 cores.
case ${TAR_COMPRESS:-gzip} in
  xz) EXT=tar.xz; COMPRESS=(xz -T0 -6) ;;
  gzip) EXT=tar.gz; COMPRESS=(gzip -n -6) ;;
  *) echo "TAR_COMPRESS must be xz or gzip" >&2; exit 1 ;;
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
cp -a dist/studio "$PKG/opt/openledger-studio"
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
# zstd inside the .deb (dpkg >= 1.21.18; Debian 12, Ubuntu 21.10): quick to pack and unpack;
# DEB_COMPRESS=xz for older dpkg.
dpkg-deb --root-owner-group "-Z${DEB_COMPRESS:-zstd}" --build "$PKG" "$DEB" >/dev/null
rm -rf "$PKG"
t4=$(date +%s)

"$PY" installers/size_report.py dist/studio "$TARBALL" "$DEB" | tee dist/size-report.txt
echo "times: venv+stage $((t1 - t0))s, pyinstaller $((t2 - t1))s," \
  "tarball $((t3 - t2))s, deb $((t4 - t3))s, total $((t4 - t0))s"
