"""Cancelling the chain's long calls: a devnet start stops the anvil it began and records nothing;
waiting for a transaction stops waiting and leaves the journal as it was (the tx still pending)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from eth_account import Account
from runtime_kit import fund, studio_on

from studio.chain.devnet import Devnet, _stray_anvils
from studio.chain.wallet import UnlockedAccount
from studio.core.changes import Changes, track_changes
from studio.core.errors import Cancelled, ChainError
from studio.core.paths import Paths

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cancelkit import TripAfter, store_picture  # noqa: E402

OPEN = 10**18


def test_cancelled_devnet_start_stops_anvil_and_records_nothing(studio_home: Path) -> None:
    d = Devnet(Paths.resolve(studio_home))
    try:
        token = TripAfter(0)  # the first check, right after anvil was spawned
        with pytest.raises(Cancelled):
            d.up(cancel=token)
        assert token.checks == 1
        assert not d.info_file.exists()
        assert not d.status()["running"]
        assert _stray_anvils(d.state_file) == []  # the anvil it began is gone
        assert d.up()["running"]  # and a later start works
    finally:
        d.down()


def test_cancelled_wait_leaves_the_journal_as_it_was(anvil, studio) -> None:
    client = studio_on(anvil, studio)
    acct = Account.create()
    fund(anvil, acct.address, 10 * OPEN)
    sender = UnlockedAccount(bytes(acct.key), timeout_s=None)
    anvil.rpc("evm_setAutomine", False)
    try:
        with track_changes(studio.events) as t, pytest.raises(ChainError, match="not mined"):
            client.tx.send(sender, to=acct.address, value=1, purpose="pay", key="c", timeout=0.1)
        (row,) = studio.store.query("SELECT * FROM chain_tx")
        assert t.changes == Changes.of(transactions=[row["tx_hash"]])  # a send reports its tx
        before = store_picture(studio.paths.db)
        token = TripAfter(0)
        with pytest.raises(Cancelled):
            client.tx.wait(row["tx_hash"], timeout=30, cancel=token)
        assert token.checks == 1
        assert store_picture(studio.paths.db) == before
        anvil.rpc("evm_mine")
    finally:
        anvil.rpc("evm_setAutomine", True)
    assert client.tx.wait(row["tx_hash"], timeout=10).status == 1
