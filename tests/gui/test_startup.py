"""Cold start: `studio gui` paints its first window without loading torch, transformers, peft,
web3, eth_account, pyqtgraph, pandas/pyarrow or numpy (they load when a page needs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_first_paint_imports_no_heavy_module(tmp_path: Path) -> None:
    from studio.ui.app import HEAVY

    home, mark = tmp_path / "home", tmp_path / "paint.json"
    env = dict(
        os.environ,
        STUDIO_HOME=str(home),
        STUDIO_GUI_FIRST_PAINT_FILE=str(mark),
        QT_QPA_PLATFORM="offscreen",
    )
    subprocess.run(
        [sys.executable, "-m", "studio", "gui"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    info = json.loads(mark.read_text())
    assert info["heavy"] == [], f"imported before the first paint: {info['heavy']}"
    assert {"torch", "web3", "transformers", "pandas", "numpy"} <= set(HEAVY)
    # the window really was built over the store, not an empty shell
    assert "studio.ui.window" in info["studio_modules"]
    assert "studio.core.store" in info["studio_modules"]


def test_index_help_default_matches_gradient_config() -> None:
    # commands/attribution.py writes the default out so the CLI does not import numpy
    from studio.attribution.gradients import GradientConfig
    from studio.commands.attribution import DEFAULT_PROJ_DIM

    assert GradientConfig().proj_dim == DEFAULT_PROJ_DIM


def test_store_opens_without_pandas(tmp_path: Path) -> None:
    code = (
        "import sys; from studio.core.store import Store; s = Store(sys.argv[1]); s.migrate();"
        "v = s.version; s.db['records'].exists();"
        "print(v, 'pandas' in sys.modules); import pandas; print('later ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s.sqlite")],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()
    assert out[1:] == ["False", "later", "ok"] and int(out[0]) > 0
