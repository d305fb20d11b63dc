#!/usr/bin/env bash
# macOS bundle: dist/OpenLedger Studio.app and a .dmg (UNTESTED here: no macOS machine; kept as
# close as possible to installers/linux/build.sh, which is built and smoke-tested).
# Signing and notarisation run only when their credentials are in the environment:
#   MACOS_SIGN_IDENTITY   "Developer ID Application: NAME (TEAMID)"   -> codesign --options runtime
#   NOTARY_APPLE_ID, NOTARY_TEAM_ID, NOTARY_PASSWORD (app-specific)   -> notarytool submit + staple
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-build/venv-installer}
PY=$VENV/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export PYTHONHASHSEED=0

if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
  "$PY" -m pip install -q torch==2.13.0
  # The lock is made on Linux; on macOS re-lock first (installers/lock.py) if a hash differs.
  "$PY" -m pip install -q --require-hashes --no-deps -r installers/requirements-build.txt
fi
"$PY" -m pip install -q --no-deps .
test -d node_modules/@foundry-rs || { echo "node_modules missing: run npm ci" >&2; exit 1; }

VERSION=$("$PY" -c 'import studio; print(studio.__version__)')
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller installers/studio.spec
APP="dist/OpenLedger Studio.app"
test -d "$APP"

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
  # Inside out: every Mach-O first (anvil, dylibs, .so), then the app with the hardened runtime.
  find "$APP/Contents" -type f \( -perm -u+x -o -name '*.dylib' -o -name '*.so' \) -print0 |
    xargs -0 codesign --force --timestamp --options runtime \
      --entitlements installers/macos/entitlements.plist --sign "$MACOS_SIGN_IDENTITY"
  codesign --force --timestamp --options runtime \
    --entitlements installers/macos/entitlements.plist --sign "$MACOS_SIGN_IDENTITY" "$APP"
  codesign --verify --deep --strict "$APP"
else
  echo "MACOS_SIGN_IDENTITY not set: the .app is unsigned (Gatekeeper will ask)."
fi

DMG="dist/OpenLedger-Studio-$VERSION-macos-$(uname -m).dmg"
rm -f "$DMG"
STAGE=build/dmg
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "OpenLedger Studio" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
  codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$DMG"
fi
if [ -n "${NOTARY_APPLE_ID:-}" ] && [ -n "${NOTARY_TEAM_ID:-}" ] && [ -n "${NOTARY_PASSWORD:-}" ]; then
  xcrun notarytool submit "$DMG" --apple-id "$NOTARY_APPLE_ID" --team-id "$NOTARY_TEAM_ID" \
    --password "$NOTARY_PASSWORD" --wait
  xcrun stapler staple "$DMG"
else
  echo "Notarisation credentials not set: skipped."
fi
"$APP/Contents/MacOS/studio" --version
du -sh "$APP" "$DMG"
