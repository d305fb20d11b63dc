"""The frozen bundle's one entry script. Two executables share it (and one COLLECT): `studio`
(console) and `studio-gui` (windowed); the executable's name says which one is running."""

import sys
from pathlib import Path

from studio.launch import launch

if __name__ == "__main__":
    gui = Path(sys.executable).stem.lower().endswith("-gui")
    raise SystemExit(launch("gui_main" if gui else "main", windowed=gui))
