"""studio --version, --help, doctor, and the demo's Datanets stage."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from studio import __version__
from studio.cli import main
from studio.commands import Context


def test_version() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and out.getvalue().strip() == f"studio {__version__}"


def test_help_lists_the_datanet_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "datanet" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["datanet", "--help"])
    out = capsys.readouterr().out
    for sub in (
        "create",
        "add",
        "list",
        "show",
        "records",
        "curate",
        "snapshot",
        "verify",
        "export",
    ):
        assert sub in out
    assert main(["datanet"]) == 2  # a group alone prints its help


def test_doctor(cli: Any, studio_home: Path) -> None:
    rc, out, err = cli("doctor", "--json")
    assert rc == 0, err
    checks = {c["check"]: c for c in json.loads(out)["checks"]}
    assert {"python", "data home", "torch", "keyring", "Qt", "anvil"} <= set(checks)
    assert checks["python"]["ok"] and checks["data home"]["detail"] == str(studio_home.resolve())
    for c in checks.values():
        assert c["ok"] or c["fix"], c  # every failing check says what to do
    rc, out, _ = cli("doctor")
    assert rc == 0 and "keyring" in out


def test_demo_datanets_stage_runs_twice(studio_home: Path) -> None:
    from studio.demo_stages.datanets import run_stage

    outs = []
    for _ in range(2):
        buf = io.StringIO()
        ctx = Context(home=str(studio_home), out=buf, err=io.StringIO())
        state: dict[str, Any] = {}
        summary = run_stage(ctx, state)
        ctx.studio.close()
        outs.append(buf.getvalue())
        assert state["datanet"] == "open-field-notes" and summary["verified"]
        assert 30 <= state["snapshot"]["records"] <= 80
        assert all(Path(p).exists() for p in summary["exports"])
    assert "rejected #" in outs[0] and "Snapshot v1" in outs[0]
    assert "already added" in outs[1] and "(unchanged)" in outs[1]
