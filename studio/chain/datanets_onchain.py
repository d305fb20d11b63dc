"""Publishing a Datanet on chain: create it once, publish a snapshot root, bind contributions.

Every step reads the chain first and is keyed for the transaction pipeline, so re-running
`studio datanet publish` after a success is a no-op and after a crash resumes where it stopped:
- the on-chain id is kept in `onchain_datanets`; a row whose Datanet no longer exists on chain
  (devnet reset) is forgotten and the Datanet created again;
- a snapshot already on chain is never published twice (`onchain_snapshots`);
- each contributor batch has a deterministic signature (its deadline derives from the snapshot's
  creation time), so the contract's `batchBound(digest)` tells which batches are already bound.
Contributors whose key this studio does not hold are reported as unbound; they are bound by a later
publish once their account is in the wallet (or by their own studio)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from studio.core import merkle
from studio.core.cancel import CancelToken, check
from studio.core.changes import Changes
from studio.core.datanets.catalog import datanet_row
from studio.core.errors import Cancelled, ChainError, InvalidInput, Suggestion

from . import contracts
from .contributions import ContributionBatch, as_bytes32, contents_hash, license_hash, sign_batch

if TYPE_CHECKING:
    from .context import OnChain, Publishing

BIND_WINDOW_S = (
    365 * 24 * 3600
)  # a contributor's signature stays usable this long after the snapshot
MAX_PER_BATCH = 1_000  # content hashes per contributor batch
MAX_PER_TX = 2_000  # content hashes per transaction (≈64 KB of calldata)
# What every front end says before publishing (the CLI's confirmation, the GUI's dialog, the help).
IRREVERSIBLE = (
    "Publishing sends up to several transactions. Until the first one is sent, cancelling "
    "changes nothing; once it is sent it cannot be undone (a cancel then stops after the "
    "transaction in flight, and publishing again finishes the rest)."
)


def _datanet_row(studio: OnChain, name: str) -> dict[str, Any]:
    return datanet_row(studio.store, name)


def _snapshot(studio: OnChain, dn: dict[str, Any], version: int | None) -> dict[str, Any]:
    q = "SELECT * FROM snapshots WHERE datanet_id = ?"
    args: list[Any] = [dn["id"]]
    if version is not None:
        q += " AND version = ?"
        args.append(int(version))
    snap = studio.store.one(q + " ORDER BY version DESC LIMIT 1", args)
    if snap is None:
        raise InvalidInput(
            f"'{dn['name']}' has no snapshot to publish.",
            hint=f"Create one first: studio datanet snapshot {dn['name']}",
        )
    return snap


def _snapshot_leaves(studio: OnChain, snapshot_id: int) -> list[dict[str, Any]]:
    # Only the leaf inputs, in snapshot order (no blob reads: publishing never needs record text).
    return studio.store.query(
        "SELECT sr.idx, r.content_sha256, r.contributor, r.license FROM snapshot_records sr"
        " JOIN records r ON r.id = sr.record_id WHERE sr.snapshot_id = ? ORDER BY sr.idx",
        (snapshot_id,),
    )


def metadata_hash(dn: dict[str, Any]) -> bytes:
    """keccak256 of the Datanet's canonical metadata JSON (what `createDatanet` commits to)."""
    doc = {k: dn.get(k) for k in ("name", "summary", "description", "license", "kind")}
    doc["tags"] = json.loads(dn["tags"]) if isinstance(dn.get("tags"), str) else dn.get("tags")
    return keccak(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def _call(fn: Any) -> Any:
    """A view call whose custom-error revert means 'not there' → None."""
    from web3.exceptions import ContractCustomError, ContractLogicError

    try:
        return fn.call()
    except (ContractCustomError, ContractLogicError):
        return None


def onchain_id(studio: OnChain, name: str, *, chain_id: int | None = None) -> int | None:
    """The Datanet's id on this chain, if it was published from this studio."""
    dn = _datanet_row(studio, name)
    cid = chain_id if chain_id is not None else studio.chain.chain_id
    row = studio.store.one(
        "SELECT onchain_id FROM onchain_datanets WHERE datanet_id = ? AND chain_id = ?",
        (dn["id"], int(cid)),
    )
    return int(row["onchain_id"]) if row else None


def ensure_created(
    studio: OnChain, account: Any, name: str, *, cancel: CancelToken | None = None
) -> tuple[int, bool, str | None]:
    """(on-chain id, created now?, tx hash). Creates the Datanet once per chain; `cancel` is
    honoured until the creating transaction is signed (see TxPipeline.send)."""
    client = studio.chain
    reg = contracts.contract(client, "DatanetRegistry")
    dn = _datanet_row(studio, name)
    cid = int(client.chain_id)
    row = studio.store.one(
        "SELECT * FROM onchain_datanets WHERE datanet_id = ? AND chain_id = ?", (dn["id"], cid)
    )
    if row is not None:
        info = _call(reg.functions.getDatanet(int(row["onchain_id"])))
        if info is not None:
            owner = info[0]
            if not reg.functions.isCurator(int(row["onchain_id"]), account.address).call():
                raise ChainError(
                    f"{account.address} is neither the owner ({owner}) nor a curator of '{name}' "
                    f"(on-chain Datanet #{row['onchain_id']}).",
                    hint="Publish from the owner's account, or ask the owner to add you as curator.",
                    suggest=Suggestion("datanet publish", {"name": name, "sender": owner}),
                )
            return int(row["onchain_id"]), False, row["tx_hash"]
        check(cancel)
        # The chain forgot it (a reset devnet): forget the stale row and create it again.
        with studio.store.transaction():
            studio.store.execute(
                "DELETE FROM onchain_datanets WHERE datanet_id = ? AND chain_id = ?",
                (dn["id"], cid),
            )
            studio.store.execute(
                "DELETE FROM onchain_snapshots WHERE datanet_id = ? AND chain_id = ?",
                (dn["id"], cid),
            )
            studio.store.execute(
                "DELETE FROM onchain_contributions WHERE datanet_id = ? AND chain_id = ?",
                (dn["id"], cid),
            )
    res = client.tx.transact(
        account,
        reg.functions.createDatanet(metadata_hash(dn), f"studio:datanet/{name}"),
        purpose=f"create Datanet '{name}' on chain",
        key=f"datanet-create:{cid}:{reg.address}:{dn['id']}",
        cancel=cancel,
    )
    ev = contracts.receipt_event(reg, "DatanetCreated", res)
    did = int(ev["datanetId"])
    with studio.store.transaction():
        studio.store.execute(
            "INSERT OR REPLACE INTO onchain_datanets(datanet_id, chain_id, onchain_id, tx_hash, created_at)"
            " VALUES (?,?,?,?,?)",
            (dn["id"], cid, did, res.hash, time.time()),
        )
    return did, True, res.hash


def _batches_for(
    leaves: list[dict[str, Any]],
) -> dict[str, list[tuple[str, list[bytes], list[int]]]]:
    """contributor → [(license, content hashes in snapshot order, their leaf indices)], each at
    most MAX_PER_BATCH long."""
    groups: dict[tuple[str, str], list[tuple[bytes, int]]] = {}
    for i, lf in enumerate(leaves):
        groups.setdefault((to_checksum_address(lf["contributor"]), lf["license"]), []).append(
            (as_bytes32(lf["content_sha256"]), i)
        )
    out: dict[str, list[tuple[str, list[bytes], list[int]]]] = {}
    for (who, lic), items in groups.items():
        for i in range(0, len(items), MAX_PER_BATCH):
            part = items[i : i + MAX_PER_BATCH]
            out.setdefault(who, []).append((lic, [h for h, _ in part], [j for _, j in part]))
    return out


def _distinct(groups: list[tuple[str, list[bytes], list[int]]]) -> int:
    """How many (contributor, content) pairs a contributor has: what the registry counts."""
    return len({h for _, hs, _ in groups for h in hs})


def publish(
    studio: Publishing,
    account: Any,
    name: str,
    *,
    signers: Mapping[str, Any] | None = None,
    version: int | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Create the Datanet on chain (once), publish its snapshot (latest, or `version`) and bind the
    contributions of every contributor in `signers` (address → unlocked account; the publishing
    account signs for itself). Returns a summary; `changed` is False when there was nothing to do.

    Up to several transactions. `cancel` is honoured until the first one is signed: a cancel then
    leaves the store, the journal and the chain as they were. Once one is sent it cannot be undone
    (IRREVERSIBLE): a cancel stops at the next transaction boundary (every sent transaction mined
    and recorded) with a `Cancelled` that says what was sent, and publishing again finishes the
    rest without sending anything twice. Local bookkeeping is written only after a send (or at
    the end), so nothing changes locally before the first transaction."""
    check(cancel)  # before anything, even the devnet's first-use deployment of the contracts
    client = studio.chain
    ev = studio.events
    dn = _datanet_row(studio, name)
    snap = _snapshot(studio, dn, version)
    leaves = _snapshot_leaves(studio, snap["id"])
    if len(leaves) != snap["records"]:
        raise ChainError(
            f"Snapshot v{snap['version']} of '{name}' is incomplete in the local store.",
            hint=f"Check it: studio datanet verify {name}",
        )
    reg = contracts.contract(client, "DatanetRegistry")
    cid = int(client.chain_id)
    ver = int(snap["version"])
    txs: list[str] = []  # sent by this call

    def until_sent() -> CancelToken | None:
        """The token for the next transaction: honoured only while nothing is sent yet."""
        return None if txs else cancel

    def boundary() -> None:
        """Between transactions: a cancel before the first one changes nothing; after it, stop here."""
        if cancel is None:
            return
        if not txs:
            cancel.check()
            return
        if not cancel.cancelled:
            return
        raise Cancelled(
            f"Publishing '{name}' stopped after {len(txs)} transaction(s) ({', '.join(txs)}); "
            "they are on chain and cannot be undone.",
            hint="Publish it again to finish: only what is still missing is sent, nothing twice.",
            suggest=Suggestion("datanet publish", {"name": name}),
        )

    ev.progress("publish", 0, 3, f"Datanet '{name}' on chain {cid}")
    did, created, create_tx = ensure_created(studio, account, name, cancel=cancel)
    if created and create_tx:
        txs.append(create_tx)
    boundary()
    info = _call(reg.functions.getDatanet(int(did)))
    # The on-chain owner receives the pooled long tail of attribution weights (recorded below).
    owner = to_checksum_address(info[0]) if info is not None else None

    signers = {to_checksum_address(a): s for a, s in (signers or {}).items()}
    signers.setdefault(to_checksum_address(account.address), account)
    per_contributor = _batches_for(leaves)
    tree = [
        merkle.leaf_hash(lf["content_sha256"], lf["contributor"], lf["license"]) for lf in leaves
    ]
    deadline = int(snap["created_at"]) + BIND_WINDOW_S
    signed: list[ContributionBatch] = []
    unbound: dict[str, int] = {}
    for who, groups in per_contributor.items():
        signer = signers.get(who)
        if signer is None:
            unbound[who] = _distinct(groups)
            continue
        for lic, hashes, indices in groups:
            boundary()
            signed.append(
                sign_batch(
                    signer,
                    chain_id=cid,
                    registry=reg.address,
                    datanet_id=did,
                    version=ver,
                    license_hash=license_hash(lic),
                    content_hashes=hashes,
                    deadline=deadline,
                ).with_proof(tree, indices)
            )

    on_chain = _call(reg.functions.getSnapshot(did, ver))
    latest_on_chain = int(reg.functions.getDatanet(did).call()[3])
    published_now = False
    if on_chain is None and latest_on_chain >= ver:
        raise ChainError(
            f"'{name}' already has version {latest_on_chain} on chain; v{ver} can no longer be published.",
            hint=f"Snapshot again (studio datanet snapshot {name}) and publish the new version.",
        )
    if on_chain is None and ver != latest_on_chain + 1:
        # On chain, versions advance by exactly one.
        raise ChainError(
            f"'{name}' has version {latest_on_chain} on chain, so v{latest_on_chain + 1} must be "
            f"published before v{ver}.",
            hint=f"Publish v{latest_on_chain + 1} first.",
            suggest=Suggestion("datanet publish", {"name": name, "version": latest_on_chain + 1}),
        )
    if on_chain is not None and "0x" + bytes(on_chain[0]).hex() != snap["root"].lower():
        raise ChainError(
            f"Version {ver} of '{name}' on chain has another root than the local snapshot.",
            hint="The local store and the chain disagree; run `studio datanet verify` and snapshot again.",
        )
    if time.time() > deadline and signed:
        raise ChainError(
            f"Contributor signatures for v{ver} would already be expired.",
            hint=f"Snapshot again: studio datanet snapshot {name}",
        )

    todo = []
    for b in signed:
        boundary()
        if on_chain is None or not _bound(reg, did, ver, cid, b):
            todo.append(b)
    chunks = _pack(todo)
    ev.progress("publish", 1, 3, f"snapshot v{ver}")
    boundary()
    if on_chain is None:
        fee = int(reg.functions.publishFee().call())
        first = chunks.pop(0) if chunks else []
        res = client.tx.transact(
            account,
            reg.functions.publishSnapshot(
                did,
                ver,
                as_bytes32(snap["root"]),
                int(snap["records"]),
                as_bytes32(snap["manifest_hash"]),
                [b.as_tuple() for b in first],
            ),
            value=fee,
            purpose=f"publish '{name}' v{ver} ({sum(len(b.content_hashes) for b in first)} contributions)",
            key=f"snapshot-publish:{cid}:{reg.address}:{did}:{ver}",
            cancel=until_sent(),
        )
        txs.append(res.hash)
        published_now = True
        tx_hash = res.hash
        _record_snapshot(studio, dn["id"], ver, cid, snap["root"], tx_hash)
    else:
        row = studio.store.one(
            "SELECT tx_hash FROM onchain_snapshots WHERE datanet_id = ? AND version = ? AND"
            " chain_id = ?",
            (dn["id"], ver, cid),
        )
        tx_hash = row["tx_hash"] if row else ""
    for i, chunk in enumerate(chunks, start=1):
        boundary()
        ev.progress("publish", 2, 3, f"binding contributions {i}/{len(chunks)}")
        digests = hashlib.sha256(b"".join(b.signature for b in chunk)).hexdigest()[:32]
        res = client.tx.transact(
            account,
            reg.functions.bindContributions(did, ver, [b.as_tuple() for b in chunk]),
            purpose=f"bind {sum(len(b.content_hashes) for b in chunk)} contributions to '{name}' v{ver}",
            key=f"bind:{cid}:{reg.address}:{did}:{ver}:{digests}",
            cancel=until_sent(),
        )
        txs.append(res.hash)

    # Every transaction is sent and mined: the local bookkeeping (a cancel no longer stops it).
    _record_snapshot(studio, dn["id"], ver, cid, snap["root"], tx_hash)
    if owner is not None:
        studio.datanets.set_owner_if_missing(name, owner)

    bound: dict[str, int] = {}
    for who in per_contributor:
        n = int(reg.functions.contributionCount(did, ver, who).call())
        total = _distinct(per_contributor[who])
        if n:
            bound[who] = n
        if n >= total:
            unbound.pop(who, None)
            with studio.store.transaction():
                studio.store.execute(
                    "INSERT OR IGNORE INTO onchain_contributions(datanet_id, version, chain_id, contributor, records,"
                    " leaves_hash, tx_hash, created_at) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        dn["id"],
                        ver,
                        cid,
                        who,
                        n,
                        "0x"
                        + contents_hash([h for _, hs, _ in per_contributor[who] for h in hs]).hex(),
                        txs[-1] if txs else tx_hash,
                        time.time(),
                    ),
                )
        elif who not in unbound:
            unbound[who] = total - n
    ev.progress("publish", 3, 3, "done")
    ev.changed(Changes.of(datanets=[name]), job="publish")  # transactions: from tx events
    return {
        "datanet": name,
        "chain_id": cid,
        "network": client.profile.name,
        "onchain_id": did,
        "registry": reg.address,
        "version": ver,
        "root": snap["root"],
        "records": int(snap["records"]),
        "created": created,
        "published": published_now,
        "bound": bound,
        "unbound": unbound,
        "transactions": txs,
        "changed": bool(txs),
    }


def _record_snapshot(
    studio: OnChain, datanet_id: int, ver: int, cid: int, root: str, tx_hash: str
) -> None:
    with studio.store.transaction():
        studio.store.execute(
            "INSERT OR IGNORE INTO onchain_snapshots(datanet_id, version, chain_id, root, tx_hash, created_at)"
            " VALUES (?,?,?,?,?,?)",
            (datanet_id, ver, cid, root, tx_hash, time.time()),
        )


def _bound(reg: Any, did: int, ver: int, cid: int, b: ContributionBatch) -> bool:
    digest = reg.functions.contributionDigest(
        did,
        ver,
        b.contributor,
        b.license_hash,
        contents_hash(b.content_hashes),
        len(b.content_hashes),
        b.deadline,
    ).call()
    return bool(reg.functions.batchBound(digest).call())


def _pack(batches: list[ContributionBatch]) -> list[list[ContributionBatch]]:
    """Whole batches into transactions of at most MAX_PER_TX content hashes."""
    out: list[list[ContributionBatch]] = []
    cur: list[ContributionBatch] = []
    size = 0
    for b in batches:
        n = len(b.content_hashes)
        if cur and size + n > MAX_PER_TX:
            out.append(cur)
            cur, size = [], 0
        cur.append(b)
        size += n
    if cur:
        out.append(cur)
    return out


def status(studio: OnChain, name: str) -> dict[str, Any]:
    """What the chain knows about a Datanet published from here (read-only)."""
    client = studio.chain
    did = onchain_id(studio, name)
    if did is None:
        return {"datanet": name, "chain_id": client.chain_id, "published": False}
    reg = contracts.contract(client, "DatanetRegistry")
    info = _call(reg.functions.getDatanet(did))
    if info is None:
        return {
            "datanet": name,
            "chain_id": client.chain_id,
            "published": False,
            "stale_onchain_id": did,
        }
    return {
        "datanet": name,
        "chain_id": client.chain_id,
        "published": True,
        "onchain_id": did,
        "owner": info[0],
        "latest_version": int(info[3]),
    }


def history(studio: OnChain, onchain_datanet_id: int, *, from_block: int = 0) -> dict[str, Any]:
    """A Datanet's on-chain history rebuilt from DatanetRegistry events alone (what an indexer does):
    owner, metadata, curators, every published snapshot and which contributor bound which records."""
    reg = contracts.contract(studio.chain, "DatanetRegistry")
    did = int(onchain_datanet_id)

    def logs(name: str) -> list[Any]:
        ev = getattr(reg.events, name)()
        found = ev.get_logs(from_block=from_block, argument_filters={"datanetId": did})
        return sorted(found, key=lambda e: (e["blockNumber"], e["logIndex"]))

    out: dict[str, Any] = {
        "onchain_id": did,
        "owner": None,
        "metadata_uri": None,
        "curators": [],
        "snapshots": {},
    }
    for e in logs("DatanetCreated"):
        out["owner"], out["metadata_uri"] = e["args"]["owner"], e["args"]["metadataURI"]
        out["metadata_hash"] = "0x" + bytes(e["args"]["metadataHash"]).hex()
    for e in logs("DatanetMetadataUpdated"):
        out["metadata_uri"] = e["args"]["metadataURI"]
        out["metadata_hash"] = "0x" + bytes(e["args"]["metadataHash"]).hex()
    for e in logs("DatanetOwnershipTransferred"):
        out["owner"] = e["args"]["newOwner"]
    curators: dict[str, bool] = {}
    for e in logs("CuratorSet"):
        curators[e["args"]["curator"]] = bool(e["args"]["enabled"])
    out["curators"] = sorted(a for a, on in curators.items() if on)
    for e in logs("SnapshotPublished"):
        a = e["args"]
        out["snapshots"][int(a["version"])] = {
            "root": "0x" + bytes(a["root"]).hex(),
            "records": int(a["recordCount"]),
            "manifest_hash": "0x" + bytes(a["manifestHash"]).hex(),
            "publisher": a["publisher"],
            "fee_wei": int(a["feePaid"]),
            "tx": "0x" + bytes(e["transactionHash"]).hex(),
            "contributions": {},
        }
    for e in logs("ContributionsBound"):
        a = e["args"]
        snap = out["snapshots"].get(int(a["version"]))
        if snap is not None:
            mine = snap["contributions"].setdefault(a["contributor"], [])
            mine.extend("0x" + bytes(h).hex() for h in a["contentHashes"])
    return out
