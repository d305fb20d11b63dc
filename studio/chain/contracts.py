"""The studio's contracts: compiled artifacts, their freshness, and where they live on each chain.

Artifacts are `resources/contracts/<Name>.json` = {abi, bytecode, deployedBytecode, source_hash,
solc_version}, built by `scripts/compile_contracts.py` (`make contracts`) and committed, so a user
needs no Node.js. `source_hash` covers every `contracts/**/*.sol`, the compiler settings, the
pinned solc version and the pinned OpenZeppelin version; `is_stale()` recomputes it.

Deployments: `<home>/deployments/<chain_id>.json` = {chain_id, source_hash, deployer, params,
contracts: {Name: address}}. On the devnet `ensure_deployed(client)` deploys once per chain id:
a Timelock (dev account 0 proposes and executes, short delay) is the default admin of all four
contracts, dev account 0 is pauser, arbiter and treasury; other networks read the file."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from studio.core import atomic
from studio.core.errors import ChainError
from studio.core.resources import resource_path

REPO = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO / "contracts"


def _artifacts_dir() -> Path:
    """resources/contracts in a checkout, or inside a frozen (PyInstaller) build."""
    env = os.environ.get("STUDIO_CONTRACT_ARTIFACTS")
    if env:
        return Path(env)
    return resource_path("contracts")


ARTIFACTS_DIR = _artifacts_dir()
PACKAGE_JSON = REPO / "package.json"

# Deployed by deploy_all, in dependency order.
CORE_CONTRACTS = ("DatanetRegistry", "ModelRegistry", "Staking", "AttributionLedger")
ALL_CONTRACTS = ("Timelock", *CORE_CONTRACTS)

SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

ROLE_NODE = 1
ROLE_VALIDATOR = 2
ROLES = {"node": ROLE_NODE, "validator": ROLE_VALIDATOR}

WEI = 10**18
# Devnet parameters (public networks bring their own deployment file). Short windows so a
# person trying the devnet sees a cooldown end without waiting an hour.
DEVNET_PARAMS: dict[str, Any] = {
    "publish_fee": 1 * WEI,
    "min_node_stake": 1_000 * WEI,
    "min_validator_stake": 500 * WEI,
    # >= challenge window + resolve period (enforced on chain).
    "unstake_cooldown_s": 300,
    "split_bps": {
        "protocol": 500,
        "model_owner": 2_500,
        "node": 2_000,
    },  # contributors: the rest (50%)
    "challenge_window_s": 120,
    "record_timeout_s": 3_600,
    "resolve_period_s": 180,
    "challenge_bond": 10 * WEI,
    "slash_amount": 100 * WEI,
    # Admin powers: a Timelock holds them; a default-admin transfer waits admin_delay_s too.
    "timelock_delay_s": 60,
    "admin_delay_s": 60,
}


def ledger_terms(p: dict[str, Any]) -> tuple[int, ...]:
    """AttributionLedger.Terms from deployment parameters."""
    s = p["split_bps"]
    return (
        int(s["protocol"]),
        int(s["model_owner"]),
        int(s["node"]),
        int(p["challenge_window_s"]),
        int(p["record_timeout_s"]),
        int(p["resolve_period_s"]),
        int(p["challenge_bond"]),
        int(p["slash_amount"]),
    )


# -- artifacts ---------------------------------------------------------------------------------


def source_files(contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    return sorted(p for p in contracts_dir.rglob("*.sol") if p.is_file())


def pinned_versions(package_json: Path = PACKAGE_JSON) -> dict[str, str]:
    deps = json.loads(package_json.read_text("utf-8")).get("devDependencies", {})
    return {"solc": deps.get("solc", "?"), "openzeppelin": deps.get("@openzeppelin/contracts", "?")}


def compute_source_hash(
    contracts_dir: Path = CONTRACTS_DIR, package_json: Path = PACKAGE_JSON
) -> str:
    """sha256 over every source (path + bytes), the compiler settings and the pinned versions."""
    h = hashlib.sha256()
    for p in source_files(contracts_dir):
        rel = p.relative_to(contracts_dir).as_posix().encode()
        data = p.read_bytes()
        h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big") + data)
    meta = {"settings": SOLC_SETTINGS, "versions": pinned_versions(package_json)}
    h.update(json.dumps(meta, sort_keys=True).encode())
    return "0x" + h.hexdigest()


def artifact_name(source: Path, contract: str, contracts_dir: Path = CONTRACTS_DIR) -> str:
    """`Name` for contracts/Name.sol, `test/Name` for contracts/test/Name.sol."""
    parent = source.parent.relative_to(contracts_dir).as_posix()
    return contract if parent in ("", ".") else f"{parent}/{contract}"


@cache
def load_artifact(name: str) -> dict[str, Any]:
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        art: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as e:
        raise ChainError(
            f"The compiled contract {name} is missing ({path}).",
            hint="Run `make contracts` from a source checkout.",
        ) from e
    return art


def abi(name: str) -> list[dict[str, Any]]:
    return list(load_artifact(name)["abi"])


def stale_reasons(
    contracts_dir: Path | None = None,
    artifacts_dir: Path | None = None,
    package_json: Path | None = None,
) -> list[str]:
    """Why the committed artifacts do not match contracts/ (empty when fresh, or with no sources)."""
    contracts_dir = contracts_dir or CONTRACTS_DIR
    artifacts_dir = artifacts_dir or ARTIFACTS_DIR
    package_json = package_json or PACKAGE_JSON
    if not contracts_dir.is_dir() or not package_json.exists():
        return []  # an installed app has no sources to compare with
    want = compute_source_hash(contracts_dir, package_json)
    reasons = []
    expected = set()
    for src in source_files(contracts_dir):
        for contract in _declared_contracts(src):
            expected.add(artifact_name(src, contract, contracts_dir))
    found = {
        p.relative_to(artifacts_dir).with_suffix("").as_posix()
        for p in artifacts_dir.rglob("*.json")
    }
    for name in sorted(expected - found):
        reasons.append(f"{name}: no artifact")
    for name in sorted(found - expected):
        reasons.append(f"{name}: artifact without a source")
    for name in sorted(expected & found):
        got = json.loads((artifacts_dir / f"{name}.json").read_text("utf-8")).get("source_hash")
        if got != want:
            reasons.append(
                f"{name}: source_hash {str(got)[:12]}… ≠ {want[:12]}… (run `make contracts`)"
            )
    return reasons


def is_stale() -> bool:
    return bool(stale_reasons())


def _declared_contracts(src: Path) -> list[str]:
    import re

    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", src.read_text("utf-8"), flags=re.S)
    return re.findall(r"^\s*(?:abstract\s+)?contract\s+(\w+)", text, flags=re.M)


# -- deployments -------------------------------------------------------------------------------


def deployment_path(client: Any) -> Path:
    return Path(client.profile.deployment_file(client.paths.home))


def load_deployment(client: Any) -> dict[str, Any]:
    path = deployment_path(client)
    try:
        dep: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as e:
        raise ChainError(
            f"No OpenLedger contracts are known on {client.profile.name} (chain {client.chain_id}).",
            hint=f'Put their addresses in {path} as {{"contracts": {{"DatanetRegistry": "0x…", …}}}}.',
        ) from e
    except ValueError as e:
        raise ChainError(f"The deployment file {path} is not valid JSON: {e}.") from e
    if int(dep.get("chain_id", client.chain_id)) != int(client.chain_id):
        raise ChainError(f"{path} is for chain {dep.get('chain_id')}, not {client.chain_id}.")
    missing = [n for n in CORE_CONTRACTS if n not in dep.get("contracts", {})]
    if missing:
        raise ChainError(f"{path} lacks the address of {', '.join(missing)}.")
    _register_errors(client)
    return dep


def _register_errors(client: Any) -> None:
    tx = client.tx
    for name in ALL_CONTRACTS:
        tx.register_errors(abi(name))


def deploy_all(
    client: Any,
    account: Any,
    *,
    params: dict[str, Any] | None = None,
    key_prefix: str | None = None,
) -> dict[str, Any]:
    """Deploy the Timelock and the four contracts from `account` and wire them up. The Timelock
    (proposer/executor: `params["governor"]`, default `account`) is every contract's default
    admin; `account` is pauser, arbiter (`params["arbiter"]`) and treasury unless given.

    With `key_prefix`, every transaction has an idempotency key, so a re-run after a crash picks up
    where it stopped instead of deploying twice."""
    p = {**DEVNET_PARAMS, **(params or {})}
    if int(p["unstake_cooldown_s"]) < int(p["challenge_window_s"]) + int(p["resolve_period_s"]):
        # The contracts refuse it too: a cooldown must outlast a challenge and its resolution.
        raise ChainError(
            "The unstake cooldown must be at least the challenge window plus the resolve period."
        )
    me = account.address
    treasury = p.get("treasury", me)
    pauser = p.get("pauser", me)
    arbiter = p.get("arbiter", me)
    governor = p.get("governor", me)
    delay = int(p["admin_delay_s"])
    tx = client.tx
    _register_errors(client)

    def key(step: str) -> str | None:
        return f"{key_prefix}:{step}" if key_prefix else None

    def deploy(name: str, args: list[Any]) -> str:
        art = load_artifact(name)
        res = tx.deploy(
            account, art["abi"], art["bytecode"], args, purpose=f"deploy {name}", key=key(name)
        )
        if not res.contract_address:
            raise ChainError(f"Deploying {name} produced no contract (tx {res.hash}).")
        hashes[name] = res.hash
        return str(res.contract_address)

    addrs: dict[str, str] = {}
    hashes: dict[str, str] = {}
    addrs["Timelock"] = deploy("Timelock", [int(p["timelock_delay_s"]), [governor], [governor]])
    admin = addrs["Timelock"]
    addrs["DatanetRegistry"] = deploy(
        "DatanetRegistry", [admin, pauser, delay, treasury, int(p["publish_fee"])]
    )
    addrs["ModelRegistry"] = deploy(
        "ModelRegistry", [admin, pauser, delay, addrs["DatanetRegistry"]]
    )
    addrs["Staking"] = deploy(
        "Staking",
        [
            admin,
            pauser,
            delay,
            int(p["min_node_stake"]),
            int(p["min_validator_stake"]),
            int(p["unstake_cooldown_s"]),
        ],
    )
    addrs["AttributionLedger"] = deploy(
        "AttributionLedger",
        [
            admin,
            pauser,
            arbiter,
            delay,
            addrs["ModelRegistry"],
            addrs["Staking"],
            treasury,
            ledger_terms(p),
        ],
    )
    staking = client.w3.eth.contract(address=addrs["Staking"], abi=abi("Staking"))
    # The ledger becomes the only slasher and stake locker; set once, by the deployer.
    tx.transact(
        account,
        staking.functions.setLedger(addrs["AttributionLedger"]),
        purpose="wire Staking to AttributionLedger",
        key=key("set-ledger"),
    )
    block = int(client.w3.eth.block_number)
    return {
        "chain_id": int(client.chain_id),
        "network": client.profile.name,
        "source_hash": load_artifact("DatanetRegistry")["source_hash"],
        "deployer": me,
        "admin": admin,
        "pauser": pauser,
        "arbiter": arbiter,
        "treasury": treasury,
        "block": block,
        "params": {
            k: v for k, v in p.items() if k not in ("treasury", "pauser", "arbiter", "governor")
        },
        "contracts": addrs,
        "tx_hashes": hashes,
    }


def _code_present(client: Any, dep: dict[str, Any]) -> bool:
    try:
        return all(len(client.w3.eth.get_code(a)) > 0 for a in dep.get("contracts", {}).values())
    except Exception:  # noqa: BLE001 - any doubt means: deploy again
        return False


def ensure_deployed(client: Any, *, allow_deploy: bool | None = None) -> dict[str, Any]:
    """The deployment on this (devnet) chain, deploying the contracts once if they are not there.

    A deployment is reused when its file exists, every address has code, and it was built from the
    current artifacts; otherwise the contracts are deployed again — on the devnet only, unless
    `allow_deploy` (a test's or script's own anvil)."""
    path = deployment_path(client)
    current = load_artifact("DatanetRegistry")["source_hash"]
    if path.exists():
        try:
            dep = json.loads(path.read_text("utf-8"))
        except ValueError:
            dep = {}
        if dep.get("source_hash") == current and _code_present(client, dep):
            _register_errors(client)
            return dict(dep)
    if not (client.profile.embedded if allow_deploy is None else allow_deploy):
        return load_deployment(client)
    from .devkeys import dev_account

    client.check_chain_id()
    # The genesis hash ties the idempotency keys to this very chain: after a reset the devnet
    # is a new chain and must get new contracts, not the journal's memory of old ones.
    genesis = client.w3.eth.get_block(0)["hash"].hex()
    dep = deploy_all(
        client, dev_account(0), key_prefix=f"deploy:{client.chain_id}:{genesis[:18]}:{current[:18]}"
    )
    if not _code_present(client, dep):  # the journal remembered a deployment from a wiped chain
        dep = deploy_all(client, dev_account(0))
    atomic.write_json(path, dep)
    _record(client, dep)
    return dep


def _record(client: Any, dep: dict[str, Any]) -> None:
    """Mirror the addresses into the store's `deployments` table (what the GUI and node list)."""
    import time

    with client.store.transaction():
        for name, address in dep["contracts"].items():
            client.store.execute(
                "INSERT OR REPLACE INTO deployments(chain_id, name, address, tx_hash, block_number, source_hash,"
                " deployed_at) VALUES (?,?,?,?,?,?,?)",
                (
                    int(dep["chain_id"]),
                    name,
                    address,
                    dep.get("tx_hashes", {}).get(name),
                    dep.get("block"),
                    dep.get("source_hash"),
                    time.time(),
                ),
            )


def contract(client: Any, name: str) -> Any:
    """A web3 contract object for one of the deployed contracts."""
    dep = client.deployment()
    return client.w3.eth.contract(address=dep["contracts"][name], abi=abi(name))


def read(client: Any, fn: Any, what: str) -> Any:
    """A view call whose revert becomes a ChainError with the decoded custom error."""
    from web3.exceptions import ContractCustomError, ContractLogicError

    try:
        return fn.call()
    except (ContractCustomError, ContractLogicError) as e:
        data = getattr(e, "data", None)
        reason = client.tx.decode_revert(data) if isinstance(data, (str, bytes)) else None
        raise ChainError(f"{what}: refused by the chain: {reason or e}.") from e


def receipt_event(contract: Any, name: str, result: Any) -> Any:
    """The arguments of the first `name` event a contract emitted in a transaction (a TxResult);
    ChainError when it emitted none."""
    from web3.logs import DISCARD

    receipt = result.receipt or contract.w3.eth.get_transaction_receipt(result.hash)
    evs = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    if not evs:
        raise ChainError(f"The transaction {result.hash} has no {name} event.")
    return evs[0]["args"]
