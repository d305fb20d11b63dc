"""Every registered operation, driven the way the GUI and the node drive it: `invoke(path, studio,
**kwargs)` with keyword arguments only (no argparse, no Namespace). Each returns a typed result
whose to_dict() is what --json prints; errors are typed (a class, a suggested operation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.commands import REGISTRY, invoke, load_all, to_json
from studio.core.errors import Cancelled, InvalidInput, Suggestion, WalletError, WrongPassword
from studio.core.prompt import FixedPrompter
from studio.core.results import Result

PASSWORD = "correct horse battery"
CONTRIBUTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
DEV0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

# Operations covered elsewhere, and why.
ELSEWHERE = {
    ("demo",): "tests/test_demo.py runs it end to end",
    ("model", "_run"): "the training job process: every `model train` here starts it",
    ("attribution", "_exact"): "the exact attribution job process: "
    "tests/attribution/test_exact_job.py kills and resumes it",
    ("wallet", "pending"): "tests/chain/test_attacks_pipeline.py (crash, list, abandon)",
    ("wallet", "forget-chain"): "tests/chain/test_tx.py (a reset custom node)",
    ("node", "run"): "tests/node/test_exactly_once.py runs it as a process (kill -9, SIGTERM)",
    ("gui",): "tests/gui/test_window.py runs `studio gui` as a process up to its first paint",
}
LOCAL = [
    "doctor",
    "datanet create",
    "datanet add",
    "datanet list",
    "datanet show",
    "datanet records",
    "datanet curate",
    "datanet edit",
    "datanet snapshot",
    "datanet proof",
    "datanet verify",
    "datanet export",
    "wallet create",
    "wallet import",
    "wallet list",
    "wallet show",
    "wallet use",
    "wallet export",
    "wallet keyring",
    "devnet status",
]
ONCHAIN = [
    "devnet up",
    "devnet faucet",
    "wallet balance",
    "wallet send",
    "wallet history",
    "wallet speed-up",
    "datanet publish",
    "stake deposit",
    "stake status",
    "stake withdraw",
    "rewards show",
    "rewards claim",
    "model train",
    "model list",
    "model resume",
    "model cancel",
    "model eval",
    "model export",
    "model generate",
    "model register",
    "attribution index",
    "attribute",
    "attribution verify",
    "devnet reset",
    "devnet down",
]


class Runner:
    """invoke() plus the checks every result gets: typed, and to_dict() is one JSON document."""

    def __init__(self, studio: Any) -> None:
        self.studio = studio
        self.called: list[str] = []

    def __call__(self, path: str, **kwargs: Any) -> Any:
        self.called.append(path)
        result = invoke(path, self.studio, **kwargs)
        items = result if isinstance(result, list) else [result]
        for r in items:
            assert isinstance(r, Result) or hasattr(r, "to_dict"), (path, type(r))
            d = r.to_dict()
            assert isinstance(d, dict) and json.loads(json.dumps(d, default=str)) is not None
        json.loads(to_json(result))
        return result

    def fails(self, path: str, exc: type[BaseException], **kwargs: Any) -> BaseException:
        self.called.append(path)
        with pytest.raises(exc) as ei:
            invoke(path, self.studio, **kwargs)
        return ei.value


@pytest.fixture
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    import studio.chain.keystore as ks

    monkeypatch.setattr(ks, "SCRYPT_N", 2**10)


@pytest.fixture
def op(studio_home: Path, fast_scrypt: None) -> Any:
    from studio.app import Studio

    s = Studio(studio_home, prompter=FixedPrompter(PASSWORD))
    yield Runner(s)
    s.close()


def _notes(tmp_path: Path, n: int = 24) -> Path:
    rows = [
        {
            "prompt": f"What did the keeper log on day {i}?",
            "response": f"High water at {6 + i % 5}:1{i % 10}, wind from the west, lamp lit at dusk.",
        }
        for i in range(n)
    ]
    f = tmp_path / "notes.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def test_every_operation_is_driven_here_or_named_elsewhere() -> None:
    load_all()
    here = {tuple(p.split()) for p in LOCAL + ONCHAIN}
    assert here | set(ELSEWHERE) == set(REGISTRY), set(REGISTRY) ^ (here | set(ELSEWHERE))


def test_signatures_are_the_contract() -> None:
    """The parser is derived from the signature: positional vs option, lists, flags, choices."""
    from studio.commands import get

    params = {p.name: p for p in get("datanet curate").params}
    assert params["name"].positional and params["name"].required
    assert params["accept"].is_list and params["accept"].type is int
    assert params["accept_all"].type is bool and params["accept_all"].default is False
    assert params["min_score"].default == 0.5
    rec = {p.name: p for p in get("datanet records").params}
    assert rec["status"].choices == ("pending", "accepted", "rejected")
    send = {p.name: p for p in get("wallet send").params}
    assert send["sender"].meta.flags == ("--from",) and not send["sender"].positional
    with pytest.raises(TypeError, match="unexpected"):
        invoke("datanet list", object(), nonsense=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no operation"):
        invoke("datanet frobnicate", object())  # type: ignore[arg-type]


def test_local_operations_with_keywords_only(op: Runner, tmp_path: Path) -> None:
    from studio.chain.results import AccountRef, ExportedAccount, KeyringState
    from studio.core.results import (
        AddFileResult,
        CurateResult,
        Datanet,
        DoctorReport,
        ExportResult,
        Record,
        RecordProof,
        Snapshot,
        VerifyResult,
    )

    assert isinstance(op("doctor"), DoctorReport)
    acct = op("wallet create", label="me")
    assert isinstance(acct, AccountRef) and acct.active and acct.to_dict()["label"] == "me"
    key_file = tmp_path / "dev0.key"
    key_file.write_text(DEV0_KEY)
    imported = op("wallet import", private_key_file=str(key_file), label="dev0")
    assert imported.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert {i.address for i in op("wallet list")} == {acct.address, imported.address}
    assert op("wallet show", address=imported.address).label == "dev0"
    assert op("wallet use", address=acct.address).address == acct.address
    # A raw key only to a 0600 file (or a terminal), only once the user confirms, never in JSON.
    with pytest.raises(InvalidInput, match="Not confirmed"):
        op("wallet export", private_key=True, out=str(tmp_path / "refused.txt"))
    from studio.app import Studio

    with Studio(op.studio.paths.home, prompter=FixedPrompter(PASSWORD, yes=True)) as yes:
        exported = invoke("wallet export", yes, private_key=True, out=str(tmp_path / "key.txt"))
    assert isinstance(exported, ExportedAccount)
    assert (tmp_path / "key.txt").read_text().startswith("0x")
    key_hex = (tmp_path / "key.txt").read_text().strip()[2:]
    assert key_hex not in to_json(exported)
    state = op("wallet keyring", action="status")
    assert isinstance(state, KeyringState) and state.usable is True
    assert op("wallet keyring", action="remember", address=acct.address).remembered

    d = op("datanet create", name="notes", summary="tide notes", tags="tides,keeper")
    assert isinstance(d, Datanet) and set(d.tags) == {"tides", "keeper"} and d.records.pending == 0
    added = op("datanet add", name="notes", files=[str(_notes(tmp_path))], contributor=CONTRIBUTOR)
    assert [type(a) for a in added] == [AddFileResult] and added[0].records == 24
    assert added[0].to_dict()["status"] == "added"
    again = op("datanet add", name="notes", files=[str(_notes(tmp_path))])
    assert again[0].status == "duplicate" and "already added" in (again[0].message or "")
    assert [x.name for x in op("datanet list")] == ["notes"]
    pending = op("datanet records", name="notes", status="pending")
    assert len(pending) == 24 and all(isinstance(r, Record) for r in pending)
    cur = op("datanet curate", name="notes", accept_all=True, min_score=0.0)
    assert isinstance(cur, CurateResult) and len(cur.changed) == 24 and not cur.left_pending
    assert cur.to_dict() == {
        "datanet": "notes",
        "status": "accepted",
        "changed": list(cur.changed),
        "left_pending": [],
    }
    new_text = tmp_path / "edit.json"
    new_text.write_text(json.dumps({"prompt": "Tide?", "response": "High water at dawn, calm."}))
    edited = op("datanet edit", name="notes", record_id=cur.changed[0], text_file=str(new_text))
    assert isinstance(edited, Record) and edited.status == "pending"
    snap = op("datanet snapshot", name="notes")
    assert isinstance(snap, Snapshot) and snap.records == 23  # the edited record is superseded
    assert set(snap.to_dict()) == {"version", "root", "records"}  # the documented shape
    assert op("datanet snapshot", name="notes").unchanged
    shown = op("datanet show", name="notes")
    assert shown.latest_snapshot and shown.latest_snapshot.root == snap.root
    assert shown.files_list and shown.files_list[0].records == 24
    proof = op("datanet proof", name="notes", record_id=cur.changed[1])
    assert isinstance(proof, RecordProof) and proof.root == snap.root and proof.proof
    from studio.core import merkle

    assert merkle.verify_proof(
        merkle.from_hex(proof.leaf),
        [merkle.from_hex(h) for h in proof.proof],
        merkle.from_hex(snap.root),
    )
    ver = op("datanet verify", name="notes")
    assert isinstance(ver, VerifyResult) and ver.ok and ver.records_checked >= 25
    out = op("datanet export", name="notes", out=str(tmp_path / "out.jsonl"), fmt="jsonl")
    assert isinstance(out, ExportResult) and out.records == 23 and Path(out.path).exists()
    st = op("devnet status")
    assert st.running is False and "running" in st.to_dict()
    assert sorted(set(op.called)) == sorted(LOCAL)


def test_wrong_password_is_its_own_error(op: Runner, studio_home: Path) -> None:
    from studio.app import Studio

    me = op("wallet create").address
    key_out = str(studio_home.parent / "key.txt")
    with Studio(studio_home, prompter=FixedPrompter("not the password", yes=True)) as other:
        with pytest.raises(WrongPassword):
            invoke("wallet export", other, address=me, private_key=True, out=key_out)
    with Studio(studio_home) as nobody:  # headless, nobody to ask
        err = pytest.raises(
            (WalletError, InvalidInput),
            invoke,
            "wallet export",
            nobody,
            private_key=True,
            out=key_out,
        ).value
        assert "--" not in str(err)  # the core names no flag; the CLI adds it


@pytest.mark.slow
def test_chain_model_and_attribution_operations(op: Runner, tmp_path: Path) -> None:
    from studio.attribution.results import AttributionReport, IndexBuild, ReportCheck
    from studio.chain.results import Balance, DevnetState, Publication, Rewards, StakeChange
    from studio.train.results import Evaluation, Generation, MergedModel, TrainingStatus

    me = op.studio.wallet.create(PASSWORD, label="me")[0]
    op.studio.datanets.create("notes")
    op.studio.datanets.add_files("notes", [_notes(tmp_path)], contributor=me)
    op.studio.datanets.curate("notes", accept_all=True, min_score=0.0)
    op.studio.datanets.snapshot("notes")

    up = op("devnet up")
    assert isinstance(up, DevnetState) and up.url
    fund = op("devnet faucet", address=me, amount="5000")
    assert fund.to_dict()["amount_wei"] == 5000 * 10**18 and fund.tx.ok
    bal = op("wallet balance")
    assert isinstance(bal, Balance) and bal.balance_wei == 5000 * 10**18
    sent = op("wallet send", to=CONTRIBUTOR, amount="1", key="pay-1")
    assert sent.to_dict()["from"] == me and not sent.tx.reused
    assert op("wallet send", to=CONTRIBUTOR, amount="1", key="pay-1").tx.reused
    err = op.fails("wallet send", InvalidInput, to=CONTRIBUTOR, amount="2", key="pay-1")
    assert "already used" in str(err)
    history = op("wallet history")
    assert history and history[0].to_dict()["tx_hash"].startswith("0x")
    missing = op.fails("wallet speed-up", WalletError, tx_hash="0x" + "ab" * 32)
    assert isinstance(missing, WalletError) and missing.suggest == Suggestion("wallet history")

    # Cancelled before its first transaction: the store (the journal too) is as it was.
    from cancelkit import TripAfter, store_picture

    op.studio.chain.deployment()  # the devnet deploys the contracts on first use
    before = store_picture(op.studio.paths.db)
    with pytest.raises(Cancelled):
        invoke("datanet publish", op.studio, name="notes", cancel=TripAfter(0))
    assert store_picture(op.studio.paths.db) == before
    # Someone at a terminal is asked first, told it cannot be undone; a "no" sends nothing.
    asked: list[str] = []

    class Declines(FixedPrompter):
        interactive = True

        def confirm(self, question: str) -> bool:
            asked.append(question)
            return False

    headless, op.studio.prompter = op.studio.prompter, Declines(PASSWORD)
    with pytest.raises(Cancelled, match="nothing was sent"):
        invoke("datanet publish", op.studio, name="notes")
    assert len(asked) == 1 and "cannot be undone" in asked[0]
    assert store_picture(op.studio.paths.db) == before
    op.studio.prompter = headless  # headless (and with yes=True): no question
    pub = op("datanet publish", name="notes")
    assert isinstance(pub, Publication) and pub.published and pub.bound == {me: 24}
    assert not op("datanet publish", name="notes").changed
    stake = op("stake deposit", amount="1000", role="node")
    assert isinstance(stake, StakeChange) and stake.staked
    assert op("stake status").roles["node"].active_wei == 1000 * 10**18
    req = op("stake withdraw", role="node")
    assert req.action == "requested"
    shown = op("rewards show")
    assert isinstance(shown, Rewards) and shown.claimable_wei == 0 and "tx" not in shown.to_dict()
    assert op("rewards claim").claimed_wei == 0

    trained = op(
        "model train",
        base="tiny",
        datanet=["notes"],
        max_steps=2,
        batch_size=2,
        max_length=64,
        name="tides",
    )
    assert isinstance(trained, TrainingStatus) and trained.status == "ready" and trained.card
    assert [m.id for m in op("model list")][-1] == "tides"
    op.fails("model resume", InvalidInput, model="tides")  # already finished
    op.fails("model cancel", InvalidInput, model="tides")  # not training
    ev = op("model eval", model="tides", datanet="notes", max_length=64)
    assert isinstance(ev, Evaluation) and ev.examples > 0
    merged = op("model export", model="tides", merged=True, out=str(tmp_path / "merged"))
    assert isinstance(merged, MergedModel) and (Path(merged.dir) / "config.json").exists()
    gen = op("model generate", model="tides", prompt="Tide?", max_new_tokens=3)
    assert isinstance(gen, Generation) and gen.seed == 0
    reg = op("model register", model="tides")
    assert reg.to_dict()
    idx = op("attribution index", model="tides")
    assert isinstance(idx, IndexBuild) and 0 < idx.records <= 24  # held-out rows are not indexed
    rep = op(
        "attribute",
        model="tides",
        prompt="What did the keeper log on day 3?",
        output="High water at 9:13, wind from the west.",
        top=3,
        sign=True,
    )
    assert isinstance(rep, AttributionReport) and rep.report["signature"]["signer"] == me
    assert sum(w["bps"] for w in rep.weights) == 10_000
    check = op("attribution verify", report=str(rep.path))
    assert isinstance(check, ReportCheck) and check.match and check.signature == "valid"

    refused = op.fails("devnet reset", InvalidInput)  # the prompter says no
    assert refused.suggest == Suggestion("devnet reset", {"yes": True})
    reset = op("devnet reset", yes=True)
    assert isinstance(reset, DevnetState)
    assert op("devnet down").to_dict()
    assert sorted(set(op.called)) == sorted(ONCHAIN)


def test_long_operations_take_a_cancel_token_through_invoke(op: Runner, tmp_path: Path) -> None:
    """The GUI's Cancel reaches the domain through invoke: cancelled at any check, `datanet add`
    and `datanet snapshot` leave the store and the blobs exactly as before."""
    from cancelkit import cancel_everywhere, folder_picture, store_picture

    from studio.commands import get

    assert {o.name for o in REGISTRY.values() if o.cancellable} >= {
        "datanet add",
        "datanet snapshot",
        "datanet verify",
        "datanet export",
        "attribution index",
        "datanet publish",
    }
    assert "cancel" not in {p.name for p in get("datanet add").params}  # never a CLI option
    s = op.studio
    op("datanet create", name="notes")
    files = [str(_notes(tmp_path, 6))]

    def pictures() -> Any:
        return store_picture(s.paths.db), folder_picture(s.paths.blobs)

    cancel_everywhere(
        lambda token: invoke(
            "datanet add", s, name="notes", files=files, contributor=CONTRIBUTOR, cancel=token
        ),
        pictures,
    )
    invoke("datanet curate", s, name="notes", accept_all=True, min_score=0.0)
    cancel_everywhere(
        lambda token: invoke("datanet snapshot", s, name="notes", cancel=token), pictures
    )
