"""Helpers for chain tests (the fixtures are in conftest.py): a real anvil, plain-web3 contract helpers.

A real anvil for chain tests.

`anvil_node` (session): one anvil child process on a free loopback port, the dev mnemonic's 10
accounts with 100,000,000 OPEN each, killed at the end of the session.
`anvil` (per test): the same node, with an EVM snapshot taken before the test and reverted after it,
so every test starts from genesis-like state without paying for a new process.
Contract helpers use plain web3 with anvil's unlocked dev accounts (no studio pipeline)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_utils import function_abi_to_4byte_selector, keccak
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError

DEV_MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 16120
OPEN = 10**18


def _dev_keys(n: int = 10) -> list[str]:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return [
        "0x"
        + bytes(Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()
        for i in range(n)
    ]


@dataclass
class Anvil:
    url: str
    port: int
    chain_id: int
    accounts: list[str]
    keys: list[str]
    proc: subprocess.Popen[bytes]
    w3: Web3 = field(init=False)

    def __post_init__(self) -> None:
        self.w3 = Web3(HTTPProvider(self.url, request_kwargs={"timeout": 30}))

    def rpc(self, method: str, *params: Any) -> Any:
        resp = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp.get("result")

    def increase_time(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", int(seconds))
        self.rpc("evm_mine")

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    # -- plain-web3 contract helpers --------------------------------------------------------
    def deploy(self, name: str, *args: Any, sender: int = 0) -> Any:
        from studio.chain.contracts import load_artifact

        art = load_artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        h = factory.constructor(*args).transact({"from": self.accounts[sender]})
        rcpt = self.w3.eth.wait_for_transaction_receipt(h)
        assert rcpt["status"] == 1, f"deploying {name} failed"
        return self.w3.eth.contract(address=rcpt["contractAddress"], abi=art["abi"])

    def send(self, fn: Any, *, sender: int | str = 0, value: int = 0) -> Any:
        """Transact and wait; returns the receipt (asserts success)."""
        frm = self.accounts[sender] if isinstance(sender, int) else sender
        h = fn.transact({"from": frm, "value": value})
        rcpt = self.w3.eth.wait_for_transaction_receipt(h)
        assert rcpt["status"] == 1
        return rcpt

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(address))


def error_selector(abi: list[dict[str, Any]], name: str) -> str:
    for item in abi:
        if item.get("type") == "error" and item["name"] == name:
            return "0x" + function_abi_to_4byte_selector(item).hex()
    # OpenZeppelin errors inherited by the contract are in its ABI too; fall back to a signature.
    raise KeyError(f"error {name} not in ABI")


def expect_revert(contract: Any, fn: Any, error: str, *, sender: str, value: int = 0) -> None:
    """The call reverts with custom error `error` of `contract` (checked by selector)."""
    sel = error_selector(contract.abi, error)
    with pytest.raises((ContractCustomError, ContractLogicError)) as ei:
        fn.call({"from": sender, "value": value})
    data = getattr(ei.value, "data", None) or ""
    if isinstance(data, bytes):
        data = "0x" + data.hex()
    assert str(data).startswith(sel), f"expected {error} ({sel}), got {data!r} / {ei.value}"


def role(name: str) -> bytes:
    return keccak(text=name)


@dataclass
class Suite:
    """The four contracts deployed and wired as deploy_all does, by plain web3 from account 0."""

    node: Anvil
    datanets: Any
    models: Any
    staking: Any
    ledger: Any
    params: dict[str, Any]


TEST_PARAMS: dict[str, Any] = {
    "publish_fee": 1 * OPEN,
    "min_node_stake": 1_000 * OPEN,
    "min_validator_stake": 500 * OPEN,
    "unstake_cooldown_s": 7_200,
    "split_bps": (500, 2_500, 2_000),
    "challenge_window_s": 3_600,
    "record_timeout_s": 7_200,
    "resolve_period_s": 3_600,
    "challenge_bond": 10 * OPEN,
    "slash_amount": 100 * OPEN,
    "admin_delay_s": 3_600,
}


def terms(p: dict[str, Any] = TEST_PARAMS, **over: Any) -> tuple[int, ...]:
    """AttributionLedger.Terms from test parameters, with overrides by field name."""
    t = {
        "protocol": p["split_bps"][0],
        "owner": p["split_bps"][1],
        "node": p["split_bps"][2],
        "window": p["challenge_window_s"],
        "timeout": p["record_timeout_s"],
        "resolve": p["resolve_period_s"],
        "bond": p["challenge_bond"],
        "slash": p["slash_amount"],
        **over,
    }
    return tuple(
        int(t[k])
        for k in ("protocol", "owner", "node", "window", "timeout", "resolve", "bond", "slash")
    )


LICENSE = "CC-BY-4.0"


def record_hash(who: str, n: int = 0) -> bytes:
    """A record's content hash (what sha256 of its content would be)."""
    import hashlib

    return hashlib.sha256(f"record {n} of {who}".encode()).digest()


def publish_bound(
    s: Suite,
    signer_keys: list[str],
    *,
    owner: int = 1,
    datanet: int | None = None,
    version: int = 1,
    extra: list[tuple[bytes, str]] = (),  # type: ignore[assignment]
    bind: bool = True,
) -> dict[str, Any]:
    """Publish a snapshot with one record per key (plus `extra` (content, contributor) leaves)
    and bind every key's record with its signature and multiproof. Returns the ids, leaves and
    each contributor's (content, index)."""
    from studio.chain.contributions import KeySigner, license_hash, sign_batch
    from studio.core import merkle

    reg = s.datanets
    if datanet is None:
        rcpt = s.node.send(reg.functions.createDatanet(keccak(text="dn"), ""), sender=owner)
        datanet = int(events(reg, "DatanetCreated", rcpt)[0]["datanetId"])
    signers = [KeySigner(k) for k in signer_keys]
    rows = [(record_hash(x.address, version), x.address) for x in signers] + list(extra)
    leaves = [merkle.leaf_hash("0x" + c.hex(), a, LICENSE) for c, a in rows]
    root = merkle.merkle_root(leaves)
    deadline = s.node.now() + 10 * 24 * 3600
    batches = []
    if bind:
        for i, x in enumerate(signers):
            b = sign_batch(
                x,
                chain_id=s.node.chain_id,
                registry=reg.address,
                datanet_id=datanet,
                version=version,
                license_hash=license_hash(LICENSE),
                content_hashes=[rows[i][0]],
                deadline=deadline,
            ).with_proof(leaves, [i])
            batches.append(b.as_tuple())
    s.node.send(
        reg.functions.publishSnapshot(
            datanet, version, root, len(rows), keccak(text="manifest"), batches
        ),
        sender=owner,
        value=s.params["publish_fee"],
    )
    return {"datanet": datanet, "version": version, "leaves": leaves, "rows": rows}


def events(contract: Any, name: str, receipt: Any) -> list[Any]:
    """Decoded `name` events of `contract` in a receipt (other contracts' logs are skipped)."""
    from web3.logs import DISCARD

    return [
        e["args"] for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    ]


@contextmanager
def started_anvil(log: Path) -> Iterator[Anvil]:
    """One real anvil with the dev mnemonic's 10 accounts, stopped on exit. Port 0: anvil binds a
    free port itself and prints it, so no other process can take it between choosing and binding."""
    from eth_account import Account

    from studio.chain.devnet import anvil_command, find_anvil

    keys = _dev_keys()
    accounts = [Account.from_key(k).address for k in keys]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            anvil_command(0, CHAIN_ID, anvil=find_anvil()), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        port = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and not port:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("Listening on "):
                    port = int(line.rsplit(":", 1)[1])
            time.sleep(0.05)
        if not port:
            raise RuntimeError(f"anvil did not start: {log.read_text(errors='replace')[-2000:]}")
        node = Anvil(f"http://127.0.0.1:{port}", port, CHAIN_ID, accounts, keys, proc)
        assert node.w3.eth.chain_id == CHAIN_ID
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
