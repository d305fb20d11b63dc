"""The background-work contract of the core: every long call takes a cancel token and, cancelled at
any of its checks, leaves the store and the blobs exactly as before; events carry a declared kind
and the id of their operation; mutations announce what they changed."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cancelkit import cancel_everywhere, folder_picture, store_picture
from test_datanets import A1, A2, BAKING, TIDES, write

from studio.core.changes import Changes, track_changes
from studio.core.errors import Cancelled, InvalidInput
from studio.core.events import Event, EventBus, EventKind
from studio.core.jobs import JobStream

MANY = "".join(
    json.dumps({"text": f"Entry {i}: the keeper counted {i * 7 % 13} gulls on the {i}th tide."})
    + "\n"
    for i in range(40)
)


@pytest.fixture
def net(studio: Any, tmp_path: Path) -> Any:
    dn = studio.datanets
    dn.create("field-notes", summary="notes")
    dn.add_files("field-notes", [write(tmp_path, "tides.md", TIDES)], contributor=A1)
    dn.curate("field-notes", accept_all=True)
    dn.snapshot("field-notes")
    return dn


def pictures(studio: Any) -> Any:
    return lambda: (store_picture(studio.paths.db), folder_picture(studio.paths.blobs))


# -- cancel -----------------------------------------------------------------------------------


def test_cancelled_add_files_leaves_store_and_blobs_as_before(
    studio: Any, net: Any, tmp_path: Path
) -> None:
    files = [write(tmp_path, "baking.jsonl", BAKING), write(tmp_path, "many.jsonl", MANY)]
    n = cancel_everywhere(
        lambda tok: net.add_files("field-notes", files, contributor=A2, cancel=tok),
        pictures(studio),
        at_least=4,
    )
    assert n >= 4
    # the run that completed added both files, once
    assert [f["name"] for f in net.files("field-notes")] == [
        "tides.md",
        "baking.jsonl",
        "many.jsonl",
    ]
    ids = [r["id"] for r in net.records("field-notes")]
    assert len(ids) == len(set(ids)) == 3 + 3 + 40


def test_cancelled_add_files_cache_does_not_leak_rolled_back_ids(
    studio: Any, net: Any, tmp_path: Path
) -> None:
    from cancelkit import TripAfter

    f = write(tmp_path, "many.jsonl", MANY)
    with pytest.raises(Cancelled):
        net.add_files("field-notes", [f], contributor=A2, cancel=TripAfter(2))
    again = net.add_files("field-notes", [f], contributor=A2)
    assert again[0]["status"] == "added" and again[0]["flags"]["exact_duplicate"] == 0


def test_cancelled_snapshot_writes_nothing(studio: Any, net: Any, tmp_path: Path) -> None:
    net.add_files("field-notes", [write(tmp_path, "baking.jsonl", BAKING)], contributor=A2)
    net.curate("field-notes", accept_all=True)
    cancel_everywhere(
        lambda tok: net.snapshot("field-notes", cancel=tok), pictures(studio), at_least=6
    )
    assert [s["version"] for s in net.snapshots("field-notes")] == [1, 2]


def test_cancelled_verify_and_export_change_nothing(studio: Any, net: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cancel_everywhere(lambda tok: net.verify("field-notes", cancel=tok), pictures(studio))
    cancel_everywhere(
        lambda tok: net.export("field-notes", out, cancel=tok),
        lambda: (pictures(studio)(), folder_picture(out)),
    )
    assert [p.name for p in out.iterdir()] == ["field-notes-v1.jsonl"]


# -- events -----------------------------------------------------------------------------------


def test_event_kinds_are_one_declared_list() -> None:
    assert Event("progress").kind is EventKind.PROGRESS
    assert Event("progress").kind == "progress"  # still compares as its string
    with pytest.raises(ValueError, match="declare it in EventKind"):
        Event("progres")  # type: ignore[arg-type]
    d = Event(EventKind.TX_MINED, data={"hash": "0x1"}, op="abc").to_dict()
    assert d["kind"] == "tx.mined" and type(d["kind"]) is str and d["op"] == "abc"
    assert Event.from_dict(json.loads(json.dumps(d))) == Event(
        EventKind.TX_MINED, data={"hash": "0x1"}, op="abc", time=d["time"]
    )


def test_job_stream_keeps_kind_and_operation_id() -> None:
    buf = io.StringIO()
    bus = EventBus()
    bus.subscribe(JobStream(buf, job="j"))
    with bus.operation("train") as op:
        bus.progress("train", 1, 2, "half")
    back = Event.from_dict(json.loads(buf.getvalue()))
    assert back.kind is EventKind.PROGRESS and back.op == op and back.job == "train"
    assert (back.step, back.total, back.message) == (1, 2, "half") and back.time > 0


def test_each_call_is_a_fresh_operation_and_nested_calls_share_it(
    studio: Any, tmp_path: Path
) -> None:
    seen: list[Event] = []
    studio.events.subscribe(seen.append)
    dn = studio.datanets
    dn.create("a-net")
    dn.add_files("a-net", [write(tmp_path, "tides.md", TIDES)], contributor=A1)
    dn.add_files("a-net", [write(tmp_path, "baking.jsonl", BAKING)], contributor=A1)
    ops = [e.op for e in seen if e.kind == EventKind.PROGRESS]
    assert len(ops) == 2 and all(ops) and ops[0] != ops[1]
    seen.clear()
    with studio.events.operation("outer") as outer:
        dn.curate("a-net", accept_all=True)
        dn.snapshot("a-net")
    assert seen and {e.op for e in seen} == {outer}


def test_a_failing_subscriber_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(_e: Event) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="studio.core.events"):
        bus.log("x", "hello")
    assert len(seen) == 1
    assert any("listener bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert any("progress" in r.getMessage() or "log" in r.getMessage() for r in caplog.records)


# -- what changed -----------------------------------------------------------------------------


def test_mutations_report_what_changed(studio: Any, tmp_path: Path) -> None:
    dn = studio.datanets
    with track_changes(studio.events) as t:
        dn.create("c-net")
    assert t.changes == Changes.of(datanets=["c-net"])
    with track_changes(studio.events) as t:
        res = dn.add_files("c-net", [write(tmp_path, "baking.jsonl", BAKING)], contributor=A1)
    ids = [r["id"] for r in dn.records("c-net")]
    assert t.changes == Changes.of(datanets=["c-net"], records=ids)
    assert "_ids" not in res[0]
    with track_changes(studio.events) as t:
        dn.add_files("c-net", [tmp_path / "baking.jsonl"], contributor=A1)  # a duplicate file
    assert not t.changes
    with track_changes(studio.events) as t:
        dn.curate("c-net", accept=ids[:2])
    assert t.changes == Changes.of(datanets=["c-net"], records=ids[:2])
    with track_changes(studio.events) as t:
        snap = dn.snapshot("c-net")
    assert t.changes == Changes.of(datanets=["c-net"], snapshots=[("c-net", snap["version"])])
    with track_changes(studio.events) as t:
        dn.snapshot("c-net")  # unchanged: nothing new
    assert not t.changes
    with track_changes(studio.events) as t:
        new = dn.edit_record("c-net", ids[1], "A new loaf, baked at dawn by the keeper.")
    assert t.changes.records == {ids[1], new["id"]}
    with pytest.raises(InvalidInput, match="messages"):  # a chat record edited with the wrong shape
        dn.edit_record("c-net", ids[2], '{"text": "A new loaf."}')


def test_changes_travel_as_json_and_merge() -> None:
    a = Changes.of(datanets=["x"], snapshots=[("x", 2)], transactions=["0xab"])
    b = Changes.of(records=[3, 1], models=["m"], accounts=["0xA"])
    both = a | b
    d = both.to_dict()
    assert d["records"] == [1, 3] and d["snapshots"] == [{"datanet": "x", "version": 2}]
    assert Changes.from_dict(json.loads(json.dumps(d))) == both
    assert not Changes() and both


def test_tracker_picks_up_transactions_and_ignores_other_operations() -> None:
    bus = EventBus()
    with track_changes(bus) as t:
        bus.emit(Event(EventKind.TX_SENT, data={"hash": "0x01"}))
        bus.emit(Event(EventKind.CHANGED, op="someone-else", data={"changes": {"models": ["m"]}}))
    assert t.changes == Changes.of(transactions=["0x01"])


def test_a_job_subprocess_events_belong_to_the_operation_that_started_it(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from studio.core.jobs import JobProcess

    repo = str(Path(__file__).resolve().parents[1])
    bus = EventBus()
    with bus.operation("train") as op:
        started = JobProcess(["--version"], env={"PYTHONPATH": repo})
    assert started.op == op and list(started.events()) == [] and started.wait(60) == 0
    # what the child streams (with its own operation id) reaches the parent as the parent's
    script = tmp_path / "job.py"
    script.write_text(
        "from studio.core.events import Event\n"
        "from studio.core.jobs import JobStream\n"
        "JobStream(job='j')(Event('progress', step=1, total=1, op='childs-own'))\n"
    )
    proc = JobProcess.__new__(JobProcess)
    proc._stderr_file = subprocess.DEVNULL
    proc.op = op
    proc.proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": repo},
    )
    (ev,) = list(proc.events())
    assert proc.wait() == 0
    assert ev.op == op and ev.kind is EventKind.PROGRESS and (ev.step, ev.total) == (1, 1)


def test_an_invoked_operation_reports_what_it_changed(studio: Any, tmp_path: Path) -> None:
    """What the GUI does: run an operation and redraw only what it changed."""
    from studio.commands import invoke

    dn = studio.datanets
    dn.create("g-net")
    dn.add_files("g-net", [write(tmp_path, "tides.md", TIDES)], contributor=A1)
    ids = [r["id"] for r in dn.records("g-net")]
    seen: list[Event] = []
    studio.events.subscribe(seen.append)
    with track_changes(studio.events, "datanet curate") as t:
        result = invoke("datanet curate", studio, name="g-net", accept_all=True)
    assert t.changes == Changes.of(datanets=["g-net"], records=ids)
    assert result.to_dict()
    assert {e.op for e in seen} == {t.op}  # invoke's operation is the tracked one
