"""GUI tests: a real offscreen Qt window over a real data home (tests/conftest.py sets STUDIO_HOME)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")


@pytest.fixture
def studio(studio_home: Path) -> Iterator[Any]:
    from studio.app import Studio

    s = Studio(studio_home)
    yield s
    s.close()


@pytest.fixture
def window(qtbot: Any, studio: Any) -> Iterator[tuple[Any, Any]]:
    """(UiContext, MainWindow) without the chain connection (tests that need it start it)."""
    from studio.ui.app import build

    ui, win = build(studio, connect=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield ui, win
    from studio.ui import ops

    win.keep_jobs = False
    ui.conn.stop()
    ui.jobs.stop()
    qtbot.waitUntil(lambda: ops.running() == 0, timeout=60_000)  # no worker outlives the test
    ui.bridge.close()
