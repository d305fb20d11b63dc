; Inno Setup 6 script: installs dist\studio\ (UNTESTED here; see README "Installers").
; build.ps1 passes /DAppVersion=X.Y.Z.
#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif

[Setup]
AppId={{6D3C9B7E-2F4A-4E55-9C0B-0E1F5A7D2B61}
AppName=OpenLedger Studio
AppVersion={#AppVersion}
AppPublisher=OpenLedger Studio developers
DefaultDirName={autopf}\OpenLedger Studio
DefaultGroupName=OpenLedger Studio
OutputDir=..\..\dist
OutputBaseFilename=OpenLedger-Studio-{#AppVersion}-setup
SetupIconFile=studio.ico
UninstallDisplayIcon={app}\studio-gui.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
; Adds {app} to PATH so the console studio.exe works from a terminal.
ChangesEnvironment=yes

[Files]
; The whole one-folder bundle: studio-gui.exe (windowed), studio.exe (console) beside it, _internal\.
Source: "..\..\dist\studio\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\OpenLedger Studio"; Filename: "{app}\studio-gui.exe"
Name: "{group}\OpenLedger Studio (command line)"; Filename: "{cmd}"; Parameters: "/k ""{app}\studio.exe"" --help"
Name: "{group}\Uninstall OpenLedger Studio"; Filename: "{uninstallexe}"
Name: "{autodesktop}\OpenLedger Studio"; Filename: "{app}\studio-gui.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Put studio.exe on the PATH"; GroupDescription: "Command line:"

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\studio-gui.exe"; Description: "{cm:LaunchProgram,OpenLedger Studio}"; Flags: nowait postinstall skipifsilent

; The uninstaller removes {app} only; the user's data home (%LOCALAPPDATA%\OpenLedgerStudio) stays.

[Code]
function NeedsAddPath(Param: string): boolean;
var
  OrigPath: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', OrigPath) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Param) + ';', ';' + Uppercase(OrigPath) + ';') = 0;
end;
