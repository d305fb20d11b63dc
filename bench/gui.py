"""Desktop studio figures, each next to a baseline measured in the same invocation:

- cold start to the first painted window (`studio gui` in a fresh process) vs a bare PySide6 window,
  and which heavy modules were imported by then (torch, transformers, web3 must not be);
- page switch (first visit builds the page; later visits only show it) vs switching empty pages;
- the longest GUI-thread stall (a 10 ms QTimer probe) while a training job (the real subprocess on
  the tiny model) and the chain poller (anvil) run, vs the same probe idle;
- filtering a 100k-record table (RecordsModel) vs fetching every id unfiltered;
- resident memory of the idle window with every page built (no model loaded) vs a bare QApplication;
- `python -X importtime` top entries of the GUI's imports.

Every figure is wall time and CPU time (this process, all threads): on a shared machine the wall
time includes waiting for a core, the CPU time does not. The load (`uptime`) is printed before and
after. One command:

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
from typing import Any

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
            print(json.dumps({"t": time.time(), "cpu": time.process_time()})); sys.stdout.flush(); QTimer.singleShot(0, app.quit)
        return False
f = F(); w.installEventFilter(f); w.resize(1180, 760); w.show(); app.exec()
"""


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def cold_start(home: Path) -> dict[str, Any]:
    """`studio gui` in a fresh process until its first paint: wall (from spawn) and the CPU the
    process used by then; the best of 3 (the first run also creates the data home)."""
    env = dict(os.environ, STUDIO_HOME=str(home), PYTHONPATH=str(REPO))
    studio_s, studio_cpu, bare_s, heavy = [], [], [], []
    for i in range(4):
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
        if i == 0:
            continue  # the first run creates and migrates the data home
        studio_s.append(info["t"] - t0)
        studio_cpu.append(info["cpu"])
        heavy = info["heavy"]
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", BARE], check=True, capture_output=True, text=True, timeout=60
        )
        bare_s.append(json.loads(out.stdout.strip().splitlines()[-1])["t"] - t0)
    return {
        "studio": min(studio_s),
        "studio_cpu": min(studio_cpu),
        "bare": min(bare_s),
        "heavy": heavy,
    }


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
    settle(2000)  # a user's first click comes a moment after the window appears
    first, again, first_cpu, again_cpu = [], [], [], []
    seen: set[str] = set()
    for _ in range(2):
        for spec in PAGES:
            t, c = time.perf_counter(), time.process_time()
            win.show_page(spec.name)
            win.repaint()  # the switch is done once the new page has painted
            dt, dc = time.perf_counter() - t, time.process_time() - c
            if spec.name in seen:
                again.append(dt)
                again_cpu.append(dc)
            else:
                first.append(dt)
                first_cpu.append(dc)
                seen.add(spec.name)
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

    # the 10 ms probe: idle first, then under load. Per tick: the wall gap, and the CPU this
    # process used during it (all threads). A gap with little CPU is the OS giving the core to
    # another process (a loaded machine); min(gap, cpu) is the part our own work could explain.
    def probe(seconds: float) -> tuple[float, float]:
        timer = QTimer()
        timer.setInterval(10)
        clock = QElapsedTimer()
        clock.start()
        worst, worst_cpu = [0.0], [0.0]
        last = [clock.elapsed(), time.process_time()]

        def tick() -> None:
            now, cpu = clock.elapsed(), time.process_time()
            gap = now - last[0] - 10
            worst[0] = max(worst[0], gap)
            worst_cpu[0] = max(worst_cpu[0], min(gap, (cpu - last[1]) * 1000 - 10))
            last[0], last[1] = now, cpu

        timer.timeout.connect(tick)
        timer.start()
        settle(int(seconds * 1000))
        timer.stop()
        return float(worst[0]), float(worst_cpu[0])

    idle_stall = probe(3)
    heavy_in_window = sorted(
        m for m in ("torch", "transformers", "peft", "web3") if m in sys.modules
    )
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
        "switch_first_cpu_ms": max(first_cpu) * 1000,
        "switch_again_cpu_ms": max(again_cpu) * 1000,
        "switch_first_page": PAGES[first.index(max(first))].name,
        "switch_first_ms": max(first) * 1000,
        "switch_first_median_ms": sorted(first)[len(first) // 2] * 1000,
        "switch_again_max_ms": max(again) * 1000,
        "switch_base_max_ms": max(base) * 1000,
        "stall_idle_ms": idle_stall[0],
        "stall_idle_cpu_ms": idle_stall[1],
        "stall_busy_ms": busy_stall[0],
        "stall_busy_cpu_ms": busy_stall[1],
        "train_steps_during_probe": float(steps),
        "rss_bare_mb": rss_bare,
        "rss_idle_mb": rss_idle,
        "heavy_in_window": heavy_in_window,  # type: ignore[dict-item]
        "_app": app is QApplication.instance(),  # type: ignore[dict-item]
    }


def table_filter(home: Path) -> dict[str, Any]:
    """What the Datanets page does on a filter change: the matching ids in one SQL query over
    the indexes (query_ids, off the GUI thread in the page), then the model reset and the first
    visible row (set_ids + data, on the GUI thread). Text: FTS5 over the records' text."""
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
    # The bench's records have no pack behind them: index their preview text into the FTS5
    # table directly (what search.index_records writes for real records).
    with studio.store.transaction():
        studio.store.execute(
            "INSERT INTO records_fts(rowid, text) SELECT id, preview FROM records WHERE datanet_id = ?",
            (did,),
        )
        studio.store.execute(
            "INSERT INTO records_fts_state(datanet_id, upto) SELECT ?, MAX(id) FROM records",
            (did,),
        )
    out: dict[str, Any] = {}
    t, c = time.perf_counter(), time.process_time()
    m.set_datanet(did)
    out["all"] = ((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000, m.rowCount())
    for name, f in (
        ("status", RecordFilter(status="accepted")),
        ("score", RecordFilter(min_score=0.8)),
        ("flag", RecordFilter(flag="PII")),
        ("contributor", RecordFilter(contributor="0xabab")),
        ("text", RecordFilter(text="tides")),
        ("combined", RecordFilter(status="pending", min_score=0.3, text="record tides")),
    ):
        best = (1e9, 1e9)
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time()
            ids = m.query_ids(f)
            m.set_ids(ids, f)
            m.data(m.index(0, 5))
            best = min(best, ((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000))
        out[name] = (*best, m.rowCount())
    t, c = time.perf_counter(), time.process_time()
    studio.store.execute("SELECT id FROM records ORDER BY id").fetchall()
    out["baseline"] = ((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000, 100_000)
    return out


def import_times(home: Path) -> list[str]:
    """`python -X importtime` of `studio gui` up to the first paint: the biggest cumulative
    entries (what the cold start pays for). The warm-up thread that imports the other pages'
    modules after the paint is switched off here, so only what precedes the paint is listed."""
    mark = home / "paint-importtime.json"
    # The paint report lists the modules it finds in HEAVY; here HEAVY is every module loaded at
    # that moment, so the rows below are cut to what was imported before the first paint (the
    # Home page's first read runs in a worker just after it).
    code = (
        "import sys; sys.argv = ['studio', 'gui']; import studio.ui.window as w; "
        "w.warm_up = lambda: None; import studio.ui.app as a\n"
        "class Loaded:\n    def __iter__(self): return iter(list(sys.modules))\n"
        "a.HEAVY = Loaded(); from studio.launch import launch; raise SystemExit(launch('main'))"
    )
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=dict(
            os.environ,
            PYTHONPATH=str(REPO),
            STUDIO_HOME=str(home),
            STUDIO_GUI_FIRST_PAINT_FILE=str(mark),
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    at_paint = set(json.loads(mark.read_text())["heavy"])
    rows = []
    for line in r.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and parts[2].strip() in at_paint:
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:8.1f} ms  {name}" for us, name in rows[:15]]


def main() -> None:
    print(f"before: {load()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        cs = cold_start(home)
        print(
            f"cold start to first paint: studio {cs['studio']:.2f} s wall, {cs['studio_cpu']:.2f} s CPU; "
            f"bare PySide6 window {cs['bare']:.2f} s (ratio {cs['studio'] / cs['bare']:.1f}x); "
            f"heavy modules at first paint: {cs['heavy'] or 'none'}"
        )
        ip = in_process(home)
        print(
            f"page switch: first visit (builds the page) max {ip['switch_first_ms']:.0f} ms wall "
            f"({ip['switch_first_page']}), {ip['switch_first_cpu_ms']:.0f} ms CPU max, median "
            f"{ip['switch_first_median_ms']:.0f} ms; later visits max {ip['switch_again_max_ms']:.1f} ms "
            f"({ip['switch_again_cpu_ms']:.1f} ms CPU); empty-page baseline max {ip['switch_base_max_ms']:.1f} ms"
        )
        print(
            f"longest GUI stall (10 ms probe): idle {ip['stall_idle_ms']:.0f} ms; training job "
            f"({ip['train_steps_during_probe']:.0f} steps seen) + chain poll every 1 s: "
            f"{ip['stall_busy_ms']:.0f} ms (ratio {ip['stall_busy_ms'] / max(ip['stall_idle_ms'], 1.0):.1f}x idle); "
            f"of it with this process on a CPU: idle {ip['stall_idle_cpu_ms']:.0f} ms, busy "
            f"{ip['stall_busy_cpu_ms']:.0f} ms"
        )
        print(
            f"memory: idle window with every page built {ip['rss_idle_mb']:.0f} MB (max RSS) vs bare QApplication {ip['rss_bare_mb']:.0f} MB; "
            f"heavy modules in the window after every page was shown: {ip['heavy_in_window'] or 'none'}"
        )
        tf = table_filter(Path(tmp))
        base = tf.pop("baseline")
        worst = max(v[0] for k, v in tf.items() if k != "all")
        print(
            "100k-record table filter, ms wall / ms CPU (rows): "
            + ", ".join(f"{k} {w:.0f}/{c:.0f} ({n:,})" for k, (w, c, n) in tf.items())
            + f"; baseline: all ids in one query {base[0]:.0f}/{base[1]:.0f} "
            f"(worst filter / baseline {worst / base[0]:.1f}x)"
        )
        print("python -X importtime, `studio gui` to the first paint, top cumulative entries:")
        for row in import_times(home):
            print("  " + row)
        from studio.chain.devnet import Devnet
        from studio.core.paths import Paths

        Devnet(Paths.resolve(home)).down()
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
