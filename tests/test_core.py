"""The core pieces everything stands on: data home, atomic writes, blobs, config, events, jobs."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from studio.core import atomic
from studio.core.blobs import BlobStore, sha256_hex
from studio.core.config import Config
from studio.core.errors import ConfigError, IntegrityError, NotFound, StudioError
from studio.core.events import CancelToken, Event, EventBus
from studio.core.jobs import JobProcess, JobStream
from studio.core.paths import Paths


def test_data_home_is_private(tmp_path: Path) -> None:
    paths = Paths.resolve(tmp_path / "h")
    for d in (paths.home, paths.blobs, paths.keystores, paths.logs):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_studio_home_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "envhome"))
    assert Paths.resolve().home == (tmp_path / "envhome").resolve()
    assert Paths.resolve(tmp_path / "explicit").home == (tmp_path / "explicit").resolve()


def test_unwritable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="writable data home"):
        Paths.resolve(blocker / "sub")


def test_atomic_write_mode_and_no_temp_left(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic.write_json(target, {"b": 1})
    assert json.loads(target.read_text()) == {"b": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("fail", ["fsync", "replace", "interrupt"])
def test_atomic_write_failure_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    """The write fails after the temp file exists (at fsync, at the rename, or by Ctrl-C): the old
    file is intact and no temp file is left in the folder."""
    target = tmp_path / "a.txt"
    atomic.write_text(target, "old")
    seen: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        if fail == "fsync":
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        seen.append(str(src))
        if fail == "replace":
            raise OSError(28, "No space left on device")
        if fail == "interrupt":
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt if fail == "interrupt" else OSError):
        atomic.write_text(target, "new")
    monkeypatch.undo()
    assert any(".a.txt." in p and p.endswith(".tmp") for p in seen)  # a temp file did exist
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_blobs_are_content_addressed_and_verified(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    d = store.put(b"hello")
    assert d == sha256_hex(b"hello")
    assert store.path_for(d).relative_to(store.root).parts == (d[:2], d[2:])
    before = store.path_for(d).stat().st_mtime_ns
    assert store.put(b"hello") == d  # never rewritten
    assert store.path_for(d).stat().st_mtime_ns == before
    assert store.get(d, verify=True) == b"hello"
    store.path_for(d).write_bytes(b"tampered")
    assert not store.verify(d)
    with pytest.raises(IntegrityError):
        store.get(d, verify=True)
    with pytest.raises(NotFound, match=r"Blob 000000000000… is missing") as e:
        store.get("00" * 32)
    assert "studio datanet verify" in (e.value.hint or "")
    with pytest.raises(IntegrityError, match=rf"Blob {d[:12]}… does not match"):
        store.get(d, verify=True)
    assert not store.verify("00" * 32)  # a missing blob does not verify (mutmut found this gap)
    assert store.verify(store.put(b"fine"))


def test_config_round_trip_and_bad_values(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    cfg = Config.load(p)
    assert cfg.network == "devnet" and cfg.ingest.max_file_mb == 50.0
    cfg.ingest.max_file_mb = 5
    cfg.extra["future_key"] = 1
    cfg.save(p)
    again = Config.load(p)
    assert again.ingest.max_file_mb == 5 and again.extra == {"future_key": 1}
    p.write_text('{"ingest": {"max_file_mb": "big"}}')
    with pytest.raises(ConfigError, match="max_file_mb"):
        Config.load(p)
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="Fix the JSON"):
        Config.load(p)


def test_event_bus_survives_broken_subscriber() -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(_e: Event) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    unsub = bus.subscribe(seen.append)
    bus.progress("ingest", 1, 2, "half")
    unsub()
    bus.progress("ingest", 2, 2)
    assert [(e.kind, e.step, e.total) for e in seen] == [("progress", 1, 2)]


def test_cancel_token() -> None:
    tok = CancelToken()
    tok.check()
    tok.cancel()
    with pytest.raises(StudioError):
        tok.check()


def test_job_subprocess_streams_json_lines(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
        import sys
        from studio.core.events import Event
        from studio.core.jobs import JobStream
        s = JobStream(job="demo")
        print("noise that is not json")
        for i in range(3):
            s(Event("progress", step=i + 1, total=3, data={"loss": 1.0 / (i + 1)}))
        """
        )
    )
    proc = JobProcess.__new__(JobProcess)
    import subprocess

    proc._stderr_file = subprocess.DEVNULL
    proc.proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    events = list(proc.events())
    assert proc.wait() == 0
    assert [e.step for e in events] == [1, 2, 3]
    assert events[-1].job == "demo" and events[-1].data["loss"] == pytest.approx(1 / 3)


def test_job_stream_writes_one_object_per_line() -> None:
    import io

    buf = io.StringIO()
    JobStream(buf, job="j")(Event("log", message="hi\nthere"))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["message"] == "hi\nthere"


def test_abandoned_blobs_are_swept_unless_used_or_still_being_written(tmp_path: Path) -> None:
    import subprocess

    store = BlobStore(tmp_path / "blobs")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        digests = {}
        for who, proc in (("live", live), ("dead", dead), ("used", dead)):
            digests[who], created = store.add_pending(f"{who} text".encode())
            assert created
            marker = store.root / ".pending" / f"{os.getpid()}.{digests[who]}"
            marker.rename(marker.with_name(f"{proc.pid}.{digests[who]}"))  # as if proc wrote it
        assert store.has_abandoned()
        removed = store.sweep_abandoned(lambda d: d == digests["used"])
        assert removed == [digests["dead"]]
        assert not store.has(digests["dead"])
        assert store.has(digests["used"]) and store.has(digests["live"])  # in use / still writing
        assert [p.name.split(".")[0] for p in (store.root / ".pending").iterdir()] == [
            str(live.pid)
        ]
    finally:
        live.kill()
        live.wait()
    assert store.sweep_abandoned(lambda d: False) == [digests["live"]]
    assert not store.has_abandoned()
    # A finished write settles its marker and keeps the blob.
    kept, _ = store.add_pending(b"committed")
    assert store.has_abandoned()
    store.settle(kept)
    assert store.has(kept) and not store.has_abandoned()
