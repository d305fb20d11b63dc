"""Desktop studio figures, each next to a baseline measured in the same invocation:

- cold start to the first painted window (`studio gui` in a fresh process) vs a bare PySide6 window,
  and which heavy modules were imported by then (torch, transformers, web3 must not be);
- page switch (first visit builds the page; later visits only show it) vs switching empty pages;
- the longest GUI-thread stall (a 10 ms QTimer probe) while a training job (the real subprocess on
  the tiny model) and the chain poller (anvil) run, vs the same probe idle;
- filtering a 100k-record table (RecordsModel) vs fetching every id unfiltered;
- resident memory of the idle window with every page built (no model loaded) vs a bare QApplication;
- `python -X importtime` top entries of the GUI's imports.

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

BARE = """
import json, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
w = QLabel("hello")
class F(QObject):
    def eventFilter(self, o, e):
        if e.type() == QEvent.Type.Paint:
            print(json.dumps({"t": time.time()})); sys.stdout.flush(); QTimer.singleShot(0, app.quit)
        return False
f = F(); w.installEventFilter(f); w.resize(1180, 760); w.show(); app.exec()
"""


def cold_start(home: Path) -> dict[str, float | list[str]]:
    env = dict(os.environ, STUDIO_HOME=str(home), PYTHONPATH=str(REPO))
    studio_s, bare_s, heavy = [], [], []
    for i in range(3):
        mark = home / f"paint-{i}.json"
        t0 = time.time()
        subprocess.run(
            [sys.executable, "-m", "studio", "gui"],
            env={**env, "STUDIO_GUI_FIRST_PAINT_FILE": str(mark)},
            check=True,
            capture_output=True,
            timeout=120,
        )
        info = json.loads(mark.read_text())
        studio_s.append(info["t"] - t0)
        heavy = info["heavy"]
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", BARE], check=True, capture_output=True, text=True, timeout=60
        )
        bare_s.append(json.loads(out.stdout.strip().splitlines()[-1])["t"] - t0)
    return {"studio": min(studio_s), "bare": min(bare_s), "heavy": heavy}


def in_process(home: Path) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication, QLabel, QStackedWidget

    from studio.app import Studio
    from studio.ui.app import application, build
    from studio.ui.window import PAGES

    app = application()

    def settle(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    rss_bare = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    studio = Studio(home)
    ui, win = build(studio, connect=False)
    win.show()
    settle(300)
    first, again = [], []
    for _ in range(2):
        for spec in PAGES:
            t = time.perf_counter()
            win.show_page(spec.name)
            win.repaint()  # the switch is done once the new page has painted
            dt = time.perf_counter() - t
            (first if spec.name not in getattr(win, "_bench_seen", set()) else again).append(dt)
            win.__dict__.setdefault("_bench_seen", set()).add(spec.name)
            settle(100)  # let the page's background reads land before the next switch
    settle(1500)
    rss_idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stack = QStackedWidget()
    for i in range(8):
        stack.addWidget(QLabel(f"page {i}"))
    stack.show()
    base = []
    for i in range(16):
        t = time.perf_counter()
        stack.setCurrentIndex(i % 8)
        stack.repaint()
        base.append(time.perf_counter() - t)

    # the 10 ms probe: idle first, then under load
    def probe(seconds: float) -> float:
        timer = QTimer()
        timer.setInterval(10)
        clock = QElapsedTimer()
        clock.start()
        worst = [0]
        last = [clock.elapsed()]

        def tick() -> None:
            now = clock.elapsed()
            worst[0] = max(worst[0], now - last[0] - 10)
            last[0] = now

        timer.timeout.connect(tick)
        timer.start()
        settle(int(seconds * 1000))
        timer.stop()
        return float(worst[0])

    idle_stall = probe(3)
    heavy_in_window = sorted(m for m in ("torch", "transformers", "web3") if m in sys.modules)
    import importlib.util

    from studio.ui.jobs import spawn

    spec = importlib.util.spec_from_file_location(
        "trainkit", REPO / "tests" / "train" / "trainkit.py"
    )
    trainkit = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(trainkit)  # type: ignore[union-attr]
    PROVENANCE, make_records = trainkit.PROVENANCE, trainkit.make_records

    mid = studio.models.prepare(
        base="tiny",
        records=make_records(48),
        provenance=PROVENANCE,
        settings=dict(
            max_steps=60, batch_size=2, max_length=64, checkpoint_every=20, val_split=0.2
        ),
        name="bench-gui",
    )
    proc = spawn(studio, mid)
    ui.jobs.follow(mid, proc, from_start=True)
    ui.conn.start(0)
    import studio.ui.connection as conn_mod

    conn_mod.POLL_S = 1  # poll the chain every second while the probe runs
    win.show_page("factory")
    waited = 0
    while ui.jobs.jobs[mid].step < 1 and waited < 120_000:  # the job imports torch first
        settle(200)
        waited += 200
    first_step = ui.jobs.jobs[mid].step
    busy_stall = probe(15)
    steps = ui.jobs.jobs[mid].step - first_step
    proc.terminate()
    proc.wait(30)
    win.keep_jobs = True
    ui.conn.stop()
    return {
        "switch_first_ms": max(first) * 1000,
        "switch_first_median_ms": sorted(first)[len(first) // 2] * 1000,
        "switch_again_max_ms": max(again) * 1000,
        "switch_base_max_ms": max(base) * 1000,
        "stall_idle_ms": idle_stall,
        "stall_busy_ms": busy_stall,
        "train_steps_during_probe": float(steps),
        "rss_bare_mb": rss_bare,
        "rss_idle_mb": rss_idle,
        "heavy_in_window": heavy_in_window,  # type: ignore[dict-item]
        "_app": app is QApplication.instance(),  # type: ignore[dict-item]
    }


def table_filter(home: Path) -> dict[str, float]:
    import importlib.util

    from studio.app import Studio
    from studio.ui.models import RecordFilter, RecordsModel

    spec = importlib.util.spec_from_file_location(
        "records_kit", REPO / "tests" / "gui" / "test_records_model.py"
    )
    kit = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(kit)  # type: ignore[union-attr]
    _fill = kit._fill

    studio = Studio(home / "table")
    m = RecordsModel(studio.store)
    did = _fill(studio.store, 100_000)
    out = {}
    t = time.perf_counter()
    m.set_datanet(did)
    out["all_ms"] = (time.perf_counter() - t) * 1000
    for name, f in (
        ("status", RecordFilter(status="accepted")),
        ("score", RecordFilter(min_score=0.8)),
        ("flag", RecordFilter(flag="PII")),
        ("contributor", RecordFilter(contributor="0xabab")),
        ("text", RecordFilter(text="tides")),
        ("combined", RecordFilter(status="pending", min_score=0.3, text="record 1")),
    ):
        t = time.perf_counter()
        m.set_filter(f)
        m.data(m.index(0, 5))
        out[f"{name}_ms"] = (time.perf_counter() - t) * 1000
        out[f"{name}_rows"] = m.rowCount()
    t = time.perf_counter()
    studio.store.execute("SELECT id FROM records ORDER BY id").fetchall()
    out["baseline_ids_ms"] = (time.perf_counter() - t) * 1000
    return out


def import_times() -> list[str]:
    r = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import studio.app, studio.ui.app, studio.ui.window, studio.ui.pages.home",
        ],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in r.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:8.1f} ms  {name}" for us, name in rows[:12]]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        cs = cold_start(home)
        print(
            f"cold start to first paint: studio {cs['studio']:.2f} s, bare PySide6 window {cs['bare']:.2f} s "
            f"(ratio {cs['studio'] / cs['bare']:.1f}x); heavy modules at first paint: {cs['heavy'] or 'none'}"
        )
        tf = table_filter(Path(tmp))
        print(
            "100k-record table filter (ms, rows): "
            + ", ".join(
                f"{k[:-3]} {tf[k]:.0f} ({tf.get(k[:-3] + '_rows', '-')})"
                for k in tf
                if k.endswith("_ms") and k != "baseline_ids_ms"
            )
            + f"; baseline all ids {tf['baseline_ids_ms']:.0f} ms (worst ratio {max(v for k, v in tf.items() if k.endswith('_ms') and k != 'baseline_ids_ms') / tf['baseline_ids_ms']:.1f}x)"
        )
        ip = in_process(home)
        print(
            f"page switch: first visit (builds the page) max {ip['switch_first_ms']:.0f} ms, median {ip['switch_first_median_ms']:.0f} ms; "
            f"later visits max {ip['switch_again_max_ms']:.1f} ms; empty-page baseline max {ip['switch_base_max_ms']:.1f} ms"
        )
        print(
            f"longest GUI stall (10 ms probe): idle {ip['stall_idle_ms']:.0f} ms; training job ({ip['train_steps_during_probe']:.0f} steps seen) "
            f"+ chain poll every 1 s: {ip['stall_busy_ms']:.0f} ms "
            f"(ratio {ip['stall_busy_ms'] / max(ip['stall_idle_ms'], 1.0):.1f}x idle)"
        )
        print(
            f"memory: idle window with every page built {ip['rss_idle_mb']:.0f} MB (max RSS) vs bare QApplication {ip['rss_bare_mb']:.0f} MB; "
            f"heavy modules in the window after every page was shown: {ip['heavy_in_window'] or 'none'}"
        )
        print("python -X importtime, top cumulative entries of the GUI's imports:")
        for row in import_times():
            print("  " + row)
        from studio.chain.devnet import Devnet
        from studio.core.paths import Paths

        Devnet(Paths.resolve(home)).down()


if __name__ == "__main__":
    main()
