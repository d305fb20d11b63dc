"""Regressions found by hand-testing the CLI as a user (QA pass on issues 2 and 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from chain_kit import Anvil
from eth_account import Account
from runtime_kit import PASSWORD, fast_scrypt, password_file, studio_on, use_anvil_for_cli  # noqa: F401

from studio.chain import contracts, datanets_onchain, staking
from studio.chain.devnet import dev_account
from studio.chain.networks import parse_address
from studio.core.errors import ChainError, InvalidInput, WalletError

GOOD = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TYPO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C9"  # last digit mistyped, mixed case kept


def _one_line_error(rc: int, out: str, err: str) -> str:
    assert rc == 1, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "unexpected" not in err and "Traceback" not in err
    return err


def test_parse_address_checks_the_eip55_checksum() -> None:
    assert parse_address(GOOD) == GOOD
    assert parse_address(GOOD.lower()) == GOOD  # all lower case carries no checksum: accepted
    assert parse_address("0x" + GOOD[2:].upper()) == GOOD
    with pytest.raises(InvalidInput, match="checksum"):
        parse_address(TYPO)
    for bad in ("0xnope", "0x1234", "", None, GOOD[2:]):
        with pytest.raises(InvalidInput, match="not an address"):
            parse_address(bad)


def test_cli_refuses_a_mistyped_address_and_a_zero_send(
    cli: Any,
    password_file: Path,  # noqa: F811
) -> None:
    rc, out, err = cli("wallet", "create", "--password-file", str(password_file))
    assert rc == 0, err
    # each is refused before anything is unlocked or any chain is touched
    for argv in (
        ("wallet", "send", TYPO, "1", "--password-file", str(password_file)),
        ("wallet", "balance", TYPO),
        ("devnet", "faucet", TYPO, "1"),
        ("stake", "status", TYPO),
        ("rewards", "show", TYPO),
    ):
        assert "checksum" in _one_line_error(*cli(*argv)), argv
    # a non-address used to surface as "unexpected ValueError" with exit 2
    assert "not an address" in _one_line_error(*cli("rewards", "show", "0xnope"))
    assert "not an address" in _one_line_error(*cli("stake", "status", "0xnope"))
    assert "not an address" in _one_line_error(*cli("wallet", "history", "0xnope"))
    err = _one_line_error(*cli("wallet", "send", GOOD, "0", "--password-file", str(password_file)))
    assert "0 OPEN" in err
    # a binary "key file" used to end in "unexpected UnicodeDecodeError" (exit 2)
    binary = password_file.with_name("key.bin")
    binary.write_bytes(b"\xfe\xff\x00\x81" * 16)
    for flag in ("--private-key-file", "--mnemonic-file"):
        err = _one_line_error(
            *cli("wallet", "import", flag, str(binary), "--password-file", str(password_file))
        )
        assert "not text" in err


def test_keystore_file_holding_another_account_is_refused(studio: Any, studio_home: Path) -> None:
    w = studio.wallet
    mine, _ = w.create(PASSWORD)
    other = w.import_private_key(bytes(Account.create().key), PASSWORD)
    folder = studio_home / "keystores"
    # the file named after `mine` now holds `other` (a copy or a swap): never use it as `mine`
    shutil.copy(folder / f"{other}.json", folder / f"{mine}.json")
    before = (folder / f"{mine}.json").read_bytes()
    for call in (
        lambda: w.get(mine),
        lambda: w.unlock(mine, password=PASSWORD),
        lambda: w.export(mine, private_key=True, password=PASSWORD),
    ):
        with pytest.raises(WalletError, match="holds the account"):
            call()
    assert [i.address for i in w.list()] == [other]  # skipped with a warning, not listed twice
    assert (folder / f"{mine}.json").read_bytes() == before


def test_withdraw_works_after_the_cooldown_on_an_idle_chain(studio: Any, anvil: Anvil) -> None:
    """On an on-demand chain (the devnet) no block is mined while a user waits out the cooldown, so
    the latest block's time stays before the unlock time. The withdraw used to be refused forever
    (the pre-check and the gas estimate both judged by that stale block)."""
    client = studio_on(anvil, studio)
    contracts.ensure_deployed(client, allow_deploy=True)
    acct = dev_account(4)
    st = contracts.contract(client, "Staking")
    minimum = int(st.functions.minStake(contracts.ROLE_NODE).call())
    staking.deposit(studio, acct, minimum, "node")
    assert staking.withdraw_or_request(studio, acct, "node")["action"] == "requested"
    with pytest.raises(ChainError, match="cooling down"):
        staking.withdraw_or_request(studio, acct, "node")
    cooldown = int(st.functions.cooldown().call())
    anvil.rpc("evm_increaseTime", cooldown + 5)  # time passes, but no block is mined
    assert (
        staking.status(studio, acct.address)["chain_time"]
        >= (staking.position(studio, acct.address, "node")["unlock_at"])
    )
    res = staking.withdraw_or_request(studio, acct, "node")
    assert res["action"] == "withdrawn" and res["amount_wei"] == minimum
    assert staking.position(studio, acct.address, "node")["pending_wei"] == 0


def test_publish_says_why_a_contributor_stays_unbound(
    cli: Any,
    anvil: Anvil,
    tmp_path: Path,
    studio_home: Path,
    password_file: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_anvil_for_cli(anvil, monkeypatch)
    from studio.app import Studio

    with Studio(studio_home) as s:
        contracts.ensure_deployed(studio_on(anvil, s), allow_deploy=True)
    other_pw = tmp_path / "other-pw.txt"
    other_pw.write_text("another long password\n")
    other_pw.chmod(0o600)  # else: a visible warning
    for i, pw in ((0, password_file), (1, other_pw)):
        key = tmp_path / f"k{i}"
        key.write_text(anvil.keys[i])
        rc, out, err = cli(
            "wallet", "import", "--private-key-file", str(key), "--password-file", str(pw)
        )
        assert rc == 0, err
    notes = tmp_path / "notes.jsonl"
    notes.write_text(
        json.dumps({"text": "The harbour master logged twelve boats out before dawn today."}) + "\n"
    )
    with Studio(studio_home) as s:
        s.datanets.create("qa-notes", license="CC-BY-4.0")
        s.datanets.add_files("qa-notes", [notes], contributor=anvil.accounts[1])
        s.datanets.curate("qa-notes", accept_all=True, min_score=0.0)
        s.datanets.snapshot("qa-notes")
    # account 1 is in the wallet but its password differs: it is locked, not missing
    rc, out, err = cli("datanet", "publish", "qa-notes", "--password-file", str(password_file))
    assert rc == 0, err
    line = next(x for x in out.splitlines() if anvil.accounts[1] in x)
    assert (
        "NOT bound" in line and "could not be unlocked" in line and "not in this wallet" not in line
    )
    rc, out, err = cli(
        "datanet", "publish", "qa-notes", "--password-file", str(password_file), "--json"
    )
    assert rc == 0 and set(json.loads(out)["locked"]) == {anvil.accounts[1]}


def test_stranger_publish_hint_names_the_real_flag(
    studio: Any, anvil: Anvil, tmp_path: Path
) -> None:
    studio_on(anvil, studio)
    contracts.ensure_deployed(studio.chain, allow_deploy=True)
    notes = tmp_path / "n.jsonl"
    notes.write_text(json.dumps({"text": "Seals hauled out on the sandbar at low water."}) + "\n")
    studio.datanets.create("owned", license="CC0-1.0")
    studio.datanets.add_files("owned", [notes], contributor=dev_account(0).address)
    studio.datanets.curate("owned", accept_all=True, min_score=0.0)
    studio.datanets.snapshot("owned")
    datanets_onchain.publish(studio, dev_account(0), "owned")
    with pytest.raises(ChainError) as e:
        datanets_onchain.publish(studio, dev_account(5), "owned")
    # The chain layer names no flag; the CLI renders the suggested operation with the real one.
    from studio.cli import error_line

    line = error_line(e.value)
    assert f"--from {dev_account(0).address}" in line and "--account" not in line


def test_unreadable_devnet_state_is_announced_not_silent(tmp_path: Path) -> None:
    """A cut-short devnet state used to be swapped for a fresh genesis with only a log line: the
    user saw every balance gone and no word why."""
    from studio.chain.devnet import Devnet
    from studio.core.events import EventBus
    from studio.core.paths import Paths

    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    dev = Devnet(Paths.resolve(tmp_path / "home"), events=bus)
    dev.dir.mkdir(parents=True, exist_ok=True)
    dev.state_file.write_text('{"block": 1, "accounts"')  # cut short
    dev._check_state_file()
    assert not dev.state_file.exists() and list(dev.dir.glob("state.corrupt-*.json"))
    assert any(ev.kind == "warning" and "from genesis" in ev.message for ev in seen)
    # with a last good copy it is restored, and said so
    seen.clear()
    dev.state_file.write_text("{}")
    dev._check_state_file()  # readable: becomes the good copy
    dev.state_file.write_text("{")
    dev._check_state_file()
    assert dev.state_file.read_text() == "{}"
    assert any(ev.kind == "warning" and "last good copy" in ev.message for ev in seen)


def test_unstake_amounts_are_checked_in_open_not_raw_wei(studio: Any, anvil: Anvil) -> None:
    """A too-large or too-small partial unstake used to come back as the raw custom error in wei
    (InsufficientStake(available=1000000000000000000000, …)); 0 said 'no active stake'."""
    client = studio_on(anvil, studio)
    contracts.ensure_deployed(client, allow_deploy=True)
    acct = dev_account(6)
    minimum = int(contracts.contract(client, "Staking").functions.minStake(1).call())
    staking.deposit(studio, acct, minimum, "node")
    for amount, words in (
        (0, "more than 0 OPEN"),
        (minimum * 5, "is more than that"),
        (minimum // 4, "below the 1,000 OPEN minimum"),
    ):
        with pytest.raises(InvalidInput, match=words) as e:
            staking.request_unstake(studio, acct, "node", amount)
        assert "000000000000000000" not in str(e.value)
    assert staking.position(studio, acct.address, "node")["active_wei"] == minimum


def test_reusing_a_send_key_for_another_transfer_is_refused(
    cli: Any,
    anvil: Anvil,
    tmp_path: Path,
    password_file: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`wallet send --key K` with another amount used to answer "Already sent" (exit 0) about the
    earlier transfer: the user believed the new amount had gone out."""
    use_anvil_for_cli(anvil, monkeypatch)
    key = tmp_path / "k7"
    key.write_text(anvil.keys[7])
    rc, out, err = cli(
        "wallet", "import", "--private-key-file", str(key), "--password-file", str(password_file)
    )
    assert rc == 0, err
    to = Account.create().address
    send = ("wallet", "send", to, "0.5", "--key", "pay-1", "--password-file", str(password_file))
    rc, out, err = cli(*send)
    assert rc == 0 and "Sent 0.5 OPEN" in out, err
    rc, out, err = cli(*send)
    assert rc == 0 and "Already sent" in out
    err = _one_line_error(*cli(*send[:3], "2", *send[4:]))
    assert "already used for another transaction" in err
    err = _one_line_error(*cli(*send[:2], GOOD, *send[3:]))
    assert "already used for another transaction" in err
    assert anvil.balance(to) == 5 * 10**17
