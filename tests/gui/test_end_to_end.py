"""One user's whole path through the real widgets, on a real anvil and the tiny model:
wizard → Datanet create/add/curate/snapshot/publish → train → chat → attribution panel shows the
planted contributor first → pay and record on chain → claim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "resources" / "sample-datanet"
KEEPER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # wrote the tide log the question is about
PASSWORD = "correct horse battery"


@pytest.mark.slow
def test_wizard_to_claim_through_the_window(qtbot: Any, studio: Any, monkeypatch: Any) -> None:
    from studio.demo_stages.attribution import ANSWER, QUESTION
    from studio.ui.app import build

    monkeypatch.setenv("STUDIO_DEMO_BASE", "tiny")
    ui, win = build(studio, connect=True)
    qtbot.addWidget(win)
    win.keep_jobs = False
    ui.answer = lambda title, text: PASSWORD if title == "password" else True
    win.show()
    qtbot.waitExposed(win)

    # -- first run wizard: a new account with a recovery phrase, devnet, faucet --------------------
    from studio.ui.wizard import FirstRunWizard

    wiz = FirstRunWizard(ui, win)
    qtbot.addWidget(wiz)
    wiz.show()
    wiz.pw.setText(PASSWORD)
    wiz.pw2.setText("different")
    wiz.next()
    assert wiz.currentId() == 0 and "differ" in wiz.pw_problem.text()
    wiz.pw2.setText(PASSWORD)
    wiz.next()  # the keystore is made off the GUI thread; the wizard moves on when it is
    assert wiz.currentId() == 0 and "Creating" in wiz.pw_problem.text()
    qtbot.waitUntil(lambda: wiz.currentId() == 1, timeout=60_000)
    phrase = wiz.phrase_box.toPlainText().split()
    assert len(phrase) == 12
    wiz.backed_up.setChecked(True)
    wiz.next()
    wiz.next()
    wiz.accept()
    me = wiz.address
    assert me and studio.wallet.active_address() == me
    assert wiz.phrase_box.toPlainText() == ""  # shown once, then gone
    qtbot.waitUntil(lambda: ui.conn.state == "green", timeout=120_000)
    qtbot.waitUntil(lambda: studio.chain.balance(me) >= 100 * 10**18, timeout=60_000)
    # The keeper signs their own contributions and claims their reward: their devnet key joins.
    from studio.chain.devnet import dev_private_key

    studio.wallet.import_private_key(dev_private_key(1), PASSWORD, label="keeper")
    studio.wallet.set_active(me)
    studio.chain.devnet.faucet(me, 2_000 * 10**18, pipeline=studio.chain.tx)  # enough to stake

    # -- Datanets --------------------------------------------------------------------------------
    manifest = json.loads((SAMPLE / "manifest.json").read_text("utf-8"))
    win.show_page("datanets")
    dn = win.pages["datanets"]
    dn.create_with(
        name=manifest["name"],
        summary=manifest["summary"],
        description=manifest["description"],
        tags=manifest["tags"],
        license=manifest["license"],
    )
    qtbot.waitUntil(lambda: dn.list.count() == 1)
    for entry in manifest["files"]:
        before = dn.model.rowCount()
        dn.add_files([str(SAMPLE / entry["file"])], contributor=entry["contributor"])
        qtbot.waitUntil(lambda b=before: dn.model.rowCount() > b, timeout=30_000)
    dn.accept_all(min_score=0.6)
    qtbot.waitUntil(
        lambda: (dn.current or {}).get("records", {}).get("accepted", 0) > 30, timeout=20_000
    )
    dn.take_snapshot()
    qtbot.waitUntil(lambda: dn.snaps.rowCount() == 1, timeout=20_000)
    keeper = studio.wallet.unlock(KEEPER, password=PASSWORD)
    dn.publish(signers={KEEPER: keeper})
    qtbot.waitUntil(lambda: "Published Datanet #" in dn.snap_log.toPlainText(), timeout=120_000)
    assert "0x70997970" in dn.snap_log.toPlainText()  # the keeper's contributions were bound

    # -- ModelFactory: train the tiny model in the job subprocess, then register -----------------
    win.show_page("factory")
    fac = win.pages["factory"]
    qtbot.waitUntil(lambda: fac.snapshot.count() == 1 and fac.base.count() >= 1, timeout=20_000)
    fac.steps.setValue(12)
    fac.length.setValue(128)
    fac.lr.setValue(0.01)
    fac.start(name="gui-e2e", base="tiny")
    qtbot.waitUntil(lambda: "gui-e2e" in ui.jobs.jobs, timeout=60_000)
    qtbot.waitUntil(lambda: ui.jobs.jobs["gui-e2e"].state != "running", timeout=300_000)
    assert ui.jobs.jobs["gui-e2e"].state == "ready", ui.jobs.jobs["gui-e2e"].log[-5:]
    assert len(ui.jobs.jobs["gui-e2e"].loss) == 12  # the live curve saw every step
    val = ui.jobs.jobs["gui-e2e"].val_loss  # before, at checkpoints, after: its own plot
    assert len(val) >= 2
    assert list(fac.val_plot._val.getData()[1]) == [v for _, v in val]
    assert fac.val_plot._train.getData()[0] is None or len(fac.val_plot._train.getData()[0]) == 0
    assert len(fac.plot._train.getData()[0]) == 12
    qtbot.waitUntil(lambda: fac.register_btn.isEnabled(), timeout=20_000)
    fac.register()
    qtbot.waitUntil(lambda: "registered as model #" in fac.result.text(), timeout=120_000)

    # -- stake as a node (only a staked node records attributions) --------------------------------
    win.show_page("rewards")
    rw = win.pages["rewards"]
    rw.amount.setText("1000")
    rw.role.setCurrentText("node")
    rw.deposit()
    qtbot.waitUntil(lambda: "Staked" in rw.result.text(), timeout=60_000)

    # -- Playground: chat, then the attribution panel ------------------------------------------------
    win.show_page("playground")
    pg = win.pages["playground"]
    qtbot.waitUntil(lambda: pg.model.count() == 1, timeout=20_000)
    pg.prompt.setPlainText(QUESTION)
    streamed: list[str] = []
    pg.answer.textChanged.connect(lambda: streamed.append(pg.answer.toPlainText()))
    gen = pg.generate()
    assert pg.gen_btn.text() == "Stop"  # while the answer streams, the button stops it
    qtbot.waitUntil(lambda: gen.finished, timeout=120_000)  # the tiny model may answer nothing
    final = pg.answer.toPlainText()
    assert pg.gen_btn.text() == "Generate" and not pg.answer.isReadOnly()
    if final:  # the answer arrived in pieces through the op's progress, each a prefix of it
        assert gen.gui_updates >= 1 and gen.ctx.updates >= gen.gui_updates
        assert all(final.startswith(t.rstrip()) for t in streamed)
    # the method picker: exact only where the version allows it (asked off the GUI thread)
    mid = pg.model.currentData()
    exact_ok = studio.attribution.choose_method(mid) == "exact"
    exact = pg.method.model().item(pg.method.findData("exact"))
    qtbot.waitUntil(lambda: "Checking" not in exact.toolTip(), timeout=60_000)
    assert exact.isEnabled() == exact_ok
    pg.answer.setPlainText(ANSWER)  # the answer as the tide log has it (the tiny model babbles)
    pg.attribute()
    qtbot.waitUntil(lambda: pg.report is not None, timeout=300_000)
    rep = pg.report
    assert rep["weights"][0]["contributor"] == KEEPER
    assert KEEPER in pg.records.toPlainText()
    assert pg.records.toPlainText().index(KEEPER) < min(
        (pg.records.toPlainText().find(w["contributor"]) for w in rep["weights"][1:]), default=10**9
    )
    assert "background-color" in pg.spans.toHtml()  # matched spans highlighted
    pg.verify()
    qtbot.waitUntil(
        lambda: "Verified" in pg.result.text() or "MISMATCH" in pg.result.text(), timeout=300_000
    )
    assert "Verified" in pg.result.text()

    # -- pay and record on chain ---------------------------------------------------------------------
    pg.pay_and_record()
    qtbot.waitUntil(lambda: "Inference #" in pg.result.text(), timeout=120_000)
    assert "recorded" in pg.result.text()

    # -- settle and claim ----------------------------------------------------------------------------
    win.show_page("rewards")
    assert rw.inference.value() == pg.last_inference
    rw.skip_window()
    qtbot.waitUntil(lambda: "clock moved" in rw.result.text(), timeout=30_000)
    rw.finalize()
    qtbot.waitUntil(lambda: "Fee split" in rw.result.text(), timeout=60_000)
    from studio.chain import staking

    owed = staking.claimable(studio, KEEPER)
    assert owed > 0
    studio.wallet.set_active(KEEPER)
    before = studio.chain.balance(KEEPER)
    rw.claim()
    qtbot.waitUntil(lambda: "Claimed" in rw.result.text(), timeout=60_000)
    assert staking.claimable(studio, KEEPER) == 0
    assert studio.chain.balance(KEEPER) > before
    win.close()
    from studio.ui import ops

    # nothing left in flight: a late chain poll would start the devnet again after teardown
    qtbot.waitUntil(lambda: ops.running() == 0, timeout=60_000)
