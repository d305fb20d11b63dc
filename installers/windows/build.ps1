# Windows bundle: dist\studio\ (studio.exe console + studio-gui.exe windowed) and an Inno Setup
# installer. UNTESTED here (no Windows machine); mirrors installers/linux/build.sh, which is
# built and smoke-tested. Needs Python 3.11+, node_modules (npm ci) and Inno Setup 6 (iscc).
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$Venv = if ($env:VENV) { $env:VENV } else { "build\venv-installer" }
$Py = Join-Path $Venv "Scripts\python.exe"
$env:PIP_DISABLE_PIP_VERSION_CHECK = "1"
$env:PYTHONHASHSEED = "0"
if (-not $env:SOURCE_DATE_EPOCH) { $env:SOURCE_DATE_EPOCH = (git log -1 --format=%ct) }

if (-not (Test-Path $Py)) {
  py -3 -m venv $Venv
  & $Py -m pip install -q torch==2.13.0
  # The lock is made on Linux; re-lock on Windows (installers/lock.py) if a hash differs.
  & $Py -m pip install -q --require-hashes --no-deps -r installers\requirements-build.txt
  if ($LASTEXITCODE) { throw "pip install failed" }
}
& $Py -m pip install -q --no-deps .
if (-not (Test-Path "node_modules\@foundry-rs\anvil-win32-amd64")) { throw "node_modules missing: run npm ci" }

# The .ico the spec and the installer use, rendered from the SVG with Qt (already in the venv).
& $Py -c @"
from PySide6.QtGui import QGuiApplication, QIcon
app = QGuiApplication([])
QIcon('resources/icons/studio.svg').pixmap(256, 256).save('installers/windows/studio.ico')
"@

& $Py -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build\pyinstaller installers\studio.spec
if ($LASTEXITCODE) { throw "PyInstaller failed" }
& dist\studio\studio.exe --version
if ($LASTEXITCODE) { throw "the frozen studio.exe does not start" }

$Version = & $Py -c "import studio; print(studio.__version__)"
$Iscc = (Get-Command iscc -ErrorAction SilentlyContinue).Source
if (-not $Iscc) { $Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $Iscc "/DAppVersion=$Version" installers\windows\studio.iss
if ($LASTEXITCODE) { throw "Inno Setup failed" }
# Signing (when a certificate is configured): signtool sign /fd sha256 /tr <timestamp-url> ...
if ($env:WINDOWS_SIGN_CERT) {
  signtool sign /fd sha256 /td sha256 /tr http://timestamp.digicert.com /f $env:WINDOWS_SIGN_CERT `
    /p $env:WINDOWS_SIGN_PASSWORD "dist\OpenLedger-Studio-$Version-setup.exe"
}
