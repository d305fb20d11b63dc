"""`studio datanet …` from the command line: every bad input exits 1 with one line on stderr and
leaves the store exactly as it was; a killed ingest leaves nothing half-added."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_ingest import make_encrypted_pdf, make_pdf

from studio.core.paths import Paths

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
REPO = Path(__file__).resolve().parents[1]


def state(home: Path) -> tuple[list[str], list[str]]:
    """The whole store: a SQL dump of the database and the list of blob files."""
    paths = Paths.resolve(home)
    con = sqlite3.connect(paths.db)
    try:
        dump = list(con.iterdump())
    finally:
        con.close()
    blobs = sorted(str(p.relative_to(paths.blobs)) for p in paths.blobs.rglob("*") if p.is_file())
    return dump, blobs


@pytest.fixture
def net(cli: Any, tmp_path: Path) -> str:
    ok = tmp_path / "ok.txt"
    ok.write_text(
        "The keeper rang the fog bell twice at dusk when the Hollow Bell rock went under.\n"
    )
    rc, out, err = cli("datanet", "create", "notes", "--summary", "test notes", "--tags", "tides")
    assert rc == 0, err
    rc, out, err = cli("datanet", "add", "notes", str(ok), "--contributor", A1)
    assert rc == 0, err
    return "notes"


def _bad(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


BAD_FILES = [
    ("data.xlsx", b"PK\x03\x04whatever", "unsupported file type"),
    ("binary.txt", bytes(range(256)) * 8, "binary"),
    ("latin1.txt", "Caf\u00e9 au lait\n".encode("latin-1"), "invalid UTF-8"),
    ("empty.md", b"", "empty"),
    ("corrupt.pdf", b"%PDF-1.4\n%%garbage that is not a pdf body\n", "PDF"),
    ("locked.pdf", None, "encrypted"),
    ("rows.csv", b"title,body\nA,B\n", "no column 'text'"),
    (
        "broken.jsonl",
        b'{"text": "fine line of text"}\n{"text": \n{"text": 3}\n',
        "malformed JSON lines: 2 .*, 3",
    ),
]


@pytest.mark.parametrize("name,data,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_exits_1_one_line_store_unchanged(
    cli: Any,
    net: str,
    studio_home: Path,
    tmp_path: Path,
    name: str,
    data: bytes | None,
    message: str,
) -> None:
    bad = _bad(tmp_path, name, data if data is not None else make_encrypted_pdf())
    good = _bad(
        tmp_path, "good.md", b"# Fine\n\nA perfectly good file that would be added on its own.\n"
    )
    before = state(studio_home)
    rc, out, err = cli("datanet", "add", net, str(good), str(bad), "--contributor", A1)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    import re

    assert re.search(message, lines[0]), lines[0]
    assert state(studio_home) == before


def test_file_over_the_size_limit(cli: Any, net: str, studio_home: Path, tmp_path: Path) -> None:
    (studio_home / "config.json").write_text(json.dumps({"ingest": {"max_file_mb": 0.001}}))
    big = _bad(tmp_path, "big.txt", b"word " * 400)
    before = state(studio_home)
    rc, out, err = cli("datanet", "add", net, str(big), "--contributor", A1)
    assert rc == 1 and "over the 0.001 MB limit" in err and len(err.strip().splitlines()) == 1
    assert state(studio_home) == before


def test_existing_name_missing_datanet_and_bad_contributor(
    cli: Any, net: str, studio_home: Path, tmp_path: Path
) -> None:
    before = state(studio_home)
    for argv, message in [
        (("datanet", "create", net), "already exists"),
        (
            ("datanet", "add", "nope", str(tmp_path / "ok.txt"), "--contributor", A1),
            "No Datanet named 'nope'",
        ),
        (
            ("datanet", "add", net, str(tmp_path / "missing.txt"), "--contributor", A1),
            "no such file",
        ),
        (
            ("datanet", "add", net, str(tmp_path / "ok.txt"), "--contributor", "0x1234"),
            "not an Ethereum address",
        ),
        (("datanet", "add", net, str(tmp_path / "ok.txt")), "no contributor: create a wallet"),
        (("datanet", "curate", net, "--reject", "1"), "needs a reason"),
        (("datanet", "curate", net, "--accept", "99"), "No record"),
        (("datanet", "snapshot", net), "no accepted records"),
        (("datanet", "export", net, "--out", str(tmp_path / "x.jsonl")), "no snapshot"),
    ]:
        rc, out, err = cli(*argv)
        assert rc == 1 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert state(studio_home) == before


def test_same_file_twice_says_so(cli: Any, net: str, studio_home: Path, tmp_path: Path) -> None:
    before = state(studio_home)
    rc, out, err = cli("datanet", "add", net, str(tmp_path / "ok.txt"), "--contributor", A1)
    assert rc == 0 and "already added" in out and "nothing added" in out
    assert state(studio_home) == before


def test_add_progress_is_in_megabytes_of_the_file(cli: Any, net: str, tmp_path: Path) -> None:
    """Records are counted only once a file is written (chunk by chunk), so an add reports how
    much of each file is in, in MB."""
    f = tmp_path / "log.jsonl"
    f.write_text(
        "".join(
            json.dumps({"text": f"Entry {i}: the tide turned at the landing."}) + "\n"
            for i in range(3000)
        )
    )
    rc, out, err = cli("datanet", "add", net, str(f), "--contributor", A1)
    size_mb = f.stat().st_size / 1e6
    assert rc == 0, err
    assert f"[ingest] {size_mb:.1f}/{size_mb:.1f} MB log.jsonl" in err, err


def test_full_cli_flow_with_json(cli: Any, net: str, tmp_path: Path) -> None:
    pdf = _bad(
        tmp_path,
        "log.pdf",
        make_pdf(["Skerry Point light, page one: the lamp flashes every seven seconds."]),
    )
    rc, out, err = cli("datanet", "add", net, str(pdf), "--contributor", A1, "--json")
    assert rc == 0 and json.loads(out)[0]["status"] == "added"
    rc, out, _ = cli("datanet", "records", net, "--json")
    assert rc == 0 and len(json.loads(out)) == 2
    rc, out, _ = cli("datanet", "curate", net, "--accept-all", "--json")
    assert rc == 0 and len(json.loads(out)["changed"]) == 2
    rc, out, _ = cli("datanet", "snapshot", net, "--json")
    snap = json.loads(out)
    assert rc == 0 and set(snap) == {"version", "root", "records"} and snap["records"] == 2
    assert snap["root"].startswith("0x") and len(snap["root"]) == 66
    rc, out, _ = cli("datanet", "verify", net)
    assert rc == 0 and "OK" in out
    rc, out, _ = cli("datanet", "proof", net, "1", "--json")
    assert rc == 0 and json.loads(out)["root"] == snap["root"]
    rc, out, _ = cli(
        "datanet", "export", net, "--out", str(tmp_path / "exp"), "--format", "parquet"
    )
    assert rc == 0 and (tmp_path / "exp" / "notes-v1.parquet").exists()
    rc, out, _ = cli("datanet", "list")
    assert rc == 0 and "notes" in out and "v1" in out
    rc, out, _ = cli("datanet", "show", net)
    assert rc == 0 and "snapshot v1" in out and A1 in out


def test_verify_cli_exits_1_on_tampering(cli: Any, net: str, studio_home: Path) -> None:
    cli("datanet", "curate", net, "--accept-all")
    cli("datanet", "snapshot", net)
    blob = next(
        p
        for p in Paths.resolve(studio_home).blobs.rglob("*")
        if p.is_file() and p.stat().st_size < 200
    )
    blob.chmod(0o600)
    blob.write_bytes(blob.read_bytes().replace(b"twice", b"thrice"))
    rc, out, err = cli("datanet", "verify", net)
    assert rc == 1 and "record #1" in out and "problem(s) found" in err


def unreferenced_blobs(home: Path) -> list[str]:
    """Blob files that no row of the database points at."""
    paths = Paths.resolve(home)
    con = sqlite3.connect(paths.db)
    try:
        used = {
            r[0]
            for r in con.execute(
                "SELECT pack FROM datanet_files UNION SELECT pack FROM records"
                " UNION SELECT manifest_hash FROM snapshots"
            )
        }
    finally:
        con.close()
    on_disk = {
        p.parent.name + p.name
        for p in paths.blobs.glob("??/*")
        if p.is_file() and not p.name.startswith(".")
    }
    return sorted(on_disk - used)


# The studio CLI with a writer slowed from outside: a progress event (and a pause) after every
# record, inside the ingest transaction, so the test can kill it there.
SLOW_INGEST = """
import sys, time
import studio.core.datanets.adding as adding
from studio.core.events import EventBus
adding._PROGRESS_EVERY = 1
_progress = EventBus.progress
def slow_progress(self, job, *a, **kw):
    _progress(self, job, *a, **kw)
    if job == "ingest":
        time.sleep(0.05)
EventBus.progress = slow_progress
from studio.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_ingest_leaves_nothing_and_rerun_completes(
    cli: Any, net: str, studio_home: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big.jsonl"
    n = 200
    big.write_text(
        "".join(
            json.dumps(
                {
                    "text": f"Record number {i}: the tide rose {i % 7} steps at the landing "
                    f"and the keeper wrote it down in log book {i // 50}."
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    env = {**os.environ, "STUDIO_HOME": str(studio_home), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_INGEST, "datanet", "add", net, str(big), "--contributor", A1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:  # wait until records are being written inside the transaction
            if "[ingest]" in line or time.monotonic() > deadline:
                break
        time.sleep(0.3)
        assert proc.poll() is None, "ingest finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    con = sqlite3.connect(Paths.resolve(studio_home).db)
    try:
        assert (
            con.execute("SELECT COUNT(*) FROM datanet_files WHERE name = 'big.jsonl'").fetchone()[0]
            == 0
        )
        assert (
            con.execute("SELECT COUNT(*) FROM records WHERE source LIKE '%big.jsonl%'").fetchone()[
                0
            ]
            == 0
        )
    finally:
        con.close()
    # The next command that opens the Datanets sweeps what the killed one left: no blob that
    # nothing references, and none of the file's text anywhere under blobs/.
    assert cli("datanet", "list")[0] == 0
    assert unreferenced_blobs(studio_home) == []
    assert not any(
        b"Record number 7:" in p.read_bytes()
        for p in Paths.resolve(studio_home).blobs.rglob("*")
        if p.is_file()
    )
    rc, out, err = cli("datanet", "add", net, str(big), "--contributor", A1, "--json")
    assert rc == 0, err
    assert json.loads(out)[0]["records"] == n
    rc, out, _ = cli("datanet", "records", net, "--json")
    assert len(json.loads(out)) == n + 1


def test_curate_accept_all_min_score_from_the_cli(cli: Any, tmp_path: Path) -> None:
    from test_datanets import MIXED

    f = tmp_path / "mixed.jsonl"
    f.write_text(MIXED)
    assert cli("datanet", "create", "mixed")[0] == 0
    assert cli("datanet", "add", "mixed", str(f), "--contributor", A1)[0] == 0
    rc, out, err = cli("datanet", "curate", "mixed", "--accept-all", "--min-score", "0.9")
    assert rc == 0, err
    rc, out, _ = cli("datanet", "records", "mixed", "--json")
    recs = json.loads(out)
    assert {r["status"] for r in recs} == {"accepted", "pending"}
    for r in recs:
        assert (r["status"] == "accepted") == (r["score"] >= 0.9), r
