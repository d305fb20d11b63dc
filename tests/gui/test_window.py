"""The real main window: every page builds and shows, the last page and geometry come back, one
instance per data home, the status bar shows the connection state, the Datanets page works."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_every_page_opens_and_has_accessible_names(qtbot: Any, window: Any) -> None:
    from studio.ui.window import PAGES

    ui, win = window
    for spec in PAGES:
        win.show_page(spec.name)
        assert win.current_page() == spec.name
        page = win.pages[spec.name]
        assert page.accessibleName() == spec.title
        assert page.isVisible()
    for i in range(win.sidebar.count()):
        assert win.sidebar.item(i).toolTip()
    # sidebar click switches page
    win.sidebar.setCurrentRow(1)
    assert win.current_page() == "datanets"
    node = win.pages["node"]
    node.refresh()
    assert "Stopped" in node.card.body.text() and node.toggle.isEnabled()


def test_last_page_and_geometry_are_remembered(qtbot: Any, studio: Any) -> None:
    from studio.ui.app import build

    ui, win = build(studio, connect=False)
    qtbot.addWidget(win)
    win.show()
    win.resize(700, 520)  # the offscreen screen is 800x600; the window's minimum may be larger
    win.show_page("wallet")
    win.close()
    saved = ui.settings.value("window/geometry")
    assert saved is not None and bytes(saved) == bytes(win.saveGeometry())
    ui2, win2 = build(studio, connect=False)
    qtbot.addWidget(win2)
    assert win2.current_page() == "wallet"


def test_second_instance_brings_the_first_forward(qtbot: Any, studio_home: Path) -> None:
    from studio.ui.single import SingleInstance

    studio_home.mkdir(parents=True, exist_ok=True)
    first = SingleInstance(studio_home)
    assert first.acquire()
    raised: list[bool] = []
    first.listen(lambda: raised.append(True))
    second = SingleInstance(studio_home)
    assert not second.acquire()
    assert second.raise_other()
    qtbot.waitUntil(lambda: bool(raised))
    first.release()
    third = SingleInstance(studio_home)
    assert third.acquire()
    third.release()


def test_status_bar_goes_red_with_retry_countdown_when_the_rpc_is_down(
    qtbot: Any, window: Any, monkeypatch: Any
) -> None:
    ui, win = window
    # a custom network whose RPC refuses connections (port 9 on loopback: discard, closed)
    monkeypatch.setenv("STUDIO_RPC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("STUDIO_CHAIN_ID", "4242")
    ui.studio._network_override = "custom"
    ui.studio.__dict__.pop("chain", None)
    ui.conn.start(0)
    qtbot.waitUntil(lambda: ui.conn.state == "red", timeout=30_000)
    text = win.status.conn.text()
    assert "retry in" in text and "custom" in text
    assert win.status.retry.isVisible()
    assert win.status.dot.kind == "bad"


def test_datanet_create_add_filter_curate_snapshot(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ui, win = window
    win.show_page("datanets")
    page = win.pages["datanets"]
    contributor = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    page.create_with(
        name="field-notes", summary="Tide logs", description="", tags=["tides"], license="CC-BY-4.0"
    )
    qtbot.waitUntil(lambda: page.list.count() == 1)
    sample = Path(__file__).resolve().parents[2] / "resources" / "sample-datanet"
    page.add_files(
        [str(sample / "keeper-notes.txt"), str(sample / "hive-log.csv")], contributor=contributor
    )
    # (the records appear on the change event, the log on the add's result: either may be first)
    qtbot.waitUntil(
        lambda: page.model.rowCount() >= 2 and "added" in page.snap_log.toPlainText(),
        timeout=20_000,
    )
    total = page.model.rowCount()
    page.f_text.setText("fog bell")
    qtbot.waitUntil(lambda: 0 < page.model.rowCount() < total)
    assert "fog bell" in page.preview.toPlainText().lower()
    page.f_text.setText("")
    qtbot.waitUntil(lambda: page.model.rowCount() == total)
    page.accept_all(min_score=0.5)
    qtbot.waitUntil(lambda: (page.current or {}).get("records", {}).get("accepted", 0) >= 1)
    page.f_status.setCurrentText("pending")
    qtbot.waitUntil(lambda: page.model.rowCount() == page.current["records"]["pending"])
    page.take_snapshot()
    qtbot.waitUntil(lambda: page.snaps.rowCount() == 1)
    assert page.snaps.item(0, 2).text().startswith("0x")
    page.verify()
    qtbot.waitUntil(lambda: "OK" in page.snap_log.toPlainText(), timeout=20_000)
    dlg_mod = __import__("studio.ui.pages.datanet_dialogs", fromlist=["x"])
    dlg = dlg_mod.CreateDatanetDialog()
    qtbot.addWidget(dlg)
    dlg.name.setText("Bad Name")
    assert "lower-case" in dlg.problem.text()
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()
    dlg.name.setText("good-name")
    assert dlg.problem.text() == ""


def test_node_page_starts_and_stops_the_light_node(qtbot: Any, window: Any) -> None:
    import httpx

    ui, win = window
    win.show_page("node")
    page = win.pages["node"]
    page.free.setChecked(True)  # no chain, no account: serve only
    page.start_stop()
    qtbot.waitUntil(lambda: ui.node is not None, timeout=60_000)
    qtbot.waitUntil(lambda: "running" in page.card.body.text(), timeout=20_000)
    r = httpx.get(f"{ui.node.url}/v1/models", timeout=10)
    assert r.status_code == 200 and r.json()["object"] == "list"
    assert page.toggle.text() == "Stop node"
    page.start_stop()
    qtbot.waitUntil(lambda: ui.node is None and page.toggle.isEnabled(), timeout=60_000)
    qtbot.waitUntil(lambda: "Stopped" in page.card.body.text())


def test_studio_gui_command_paints_a_window_without_heavy_imports(tmp_path: Path) -> None:
    """`studio gui` end to end in its own process: the window paints, and by then neither torch,
    transformers, web3 nor eth_account was imported (they load when a page needs them)."""
    import json
    import os
    import subprocess
    import sys

    mark = tmp_path / "painted.json"
    env = {
        **os.environ,
        "STUDIO_HOME": str(tmp_path / "home"),
        "STUDIO_GUI_FIRST_PAINT_FILE": str(mark),
    }
    r = subprocess.run(
        [sys.executable, "-m", "studio", "gui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(mark.read_text())["heavy"] == []


def test_compare_plot_is_built_when_its_tab_is_first_shown(qtbot: Any, window: Any) -> None:
    _ui, win = window
    win.show_page("factory")
    page = win.pages["factory"]
    assert page.compare_plot is None  # not on the page's first visit
    page.tabs.setCurrentIndex(
        [page.tabs.tabText(i) for i in range(page.tabs.count())].index("Compare")
    )
    assert page.compare_plot is not None
    qtbot.waitUntil(page.compare_plot.isVisible)  # a layout shows a new child on the next loop
    shown = page.compare_plot
    page.tabs.setCurrentIndex(0)
    page.tabs.setCurrentIndex(2)
    assert page.compare_plot is shown  # built once


def test_warm_up_imports_qt_modules_only_on_the_gui_thread(qtbot: Any, monkeypatch: Any) -> None:
    """PySide6 builds its types lazily and not thread-safely: a Qt-based module imported by the
    warm-up thread while the GUI thread built widgets crashed the process (SIGSEGV)."""
    import threading

    from studio.ui import window

    seen: dict[str, bool] = {}
    real = window._import_quietly

    def record(name: str) -> None:
        seen[name] = threading.current_thread() is threading.main_thread()
        real(name)

    monkeypatch.setattr(window, "_import_quietly", record)
    window.warm_up()
    qtbot.waitUntil(lambda: set(window.WARM_UP_QT) <= set(seen), timeout=60_000)
    window.finish_warm_up()
    assert all(seen[n] for n in window.WARM_UP_QT)
    assert not any(seen[n] for n in window.WARM_UP_PLAIN)


def test_warm_up_thread_modules_never_load_qt() -> None:
    import subprocess
    import sys

    from studio.ui.window import WARM_UP_PLAIN

    code = (
        "import importlib, sys\n"
        f"for n in {WARM_UP_PLAIN!r}: importlib.import_module(n)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"
