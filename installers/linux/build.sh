#!/usr/bin/env bash
# Linux bundle: dist/studio/ (PyInstaller one-folder), then a .tar.gz and a .deb in dist/.
#   installers/linux/build.sh            # uses/creates build/venv-installer from the hashed lock
# Needs: python3 (3.11+), node_modules (npm ci), dpkg-deb; desktop-file-validate is optional.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENV=${VENV:-build/venv-installer}
PY=$VENV/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Reproducible: timestamps in the bundle, the tarball and the .deb come from the last commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export PYTHONHASHSEED=0

if [ ! -x "$PY" ] || [ installers/requirements-build.txt -nt "$VENV/.stamp-build" ]; then
  python3 -m venv "$VENV"
  # torch first, exactly pinned (the CPU wheel); then everything else from the hashed lock.
  "$PY" -m pip install -q torch==2.13.0
  "$PY" -m pip install -q --require-hashes --no-deps -r installers/requirements-build.txt
  "$PY" -m pip install -q --no-deps .
  touch "$VENV/.stamp-build"
else
  "$PY" -m pip install -q --no-deps .   # the project itself, non-editable
fi
test -d node_modules/@foundry-rs || { echo "node_modules missing: run npm ci" >&2; exit 1; }

VERSION=$("$PY" -c 'import studio; print(studio.__version__)')
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller installers/studio.spec
echo "pyinstaller: $(( $(date +%s) - start ))s"

# .tar.gz: sorted, fixed owner and mtime, gzip without a name/time stamp.
TARBALL=dist/openledger-studio-$VERSION-linux-$ARCH.tar.gz
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C dist -cf - studio | gzip -n -6 > "$TARBALL"

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
DEB=dist/openledger-studio_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zgzip --build "$PKG" "$DEB" >/dev/null

du -sh dist/studio "$TARBALL" "$DEB"
echo "built in $(( $(date +%s) - start ))s"
