"""The frozen bundle's one entry script. Two executables share it (and one COLLECT): `studio`
(console) and `studio-gui` (windowed); the executable's name says which one is running."""

import sys
from pathlib import Path

from studio.launch import launch

if __name__ == "__main__":
    # argv[0]: on Linux studio-gui is a link to studio (one executable, one copy of the PYZ).
    gui = any(Path(n).stem.lower().endswith("-gui") for n in (sys.argv[0], sys.executable))
    raise SystemExit(launch("gui_main" if gui else "main", windowed=gui))
