"""The chain index: verified contract events decoded with the contracts' ABIs and written into the
store, plus the projections the desktop app reads (Datanets, snapshots, contributions, models,
inferences with their attributions and challenges, stakes and slashes).

`node_events` is the source of truth; the node_* projections are rebuilt from it after a reorg, so
rolling back is "delete the events above the common ancestor, replay the rest"."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_hash.auto import keccak

from .verify import hb, hi, hx

PROJECTIONS = (
    "node_datanets",
    "node_snapshots",
    "node_contributions",
    "node_models",
    "node_inferences",
    "node_stakes",
)


def _type(inp: dict[str, Any]) -> str:
    t = str(inp["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in inp.get("components", [])) + ")" + t[5:]
    return t


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return hx(v)
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**53:
        return str(v)  # JSON readers elsewhere round big integers
    return v


def _checksum(t: str, v: Any) -> Any:
    from eth_utils import to_checksum_address

    if t == "address" and isinstance(v, str):
        return to_checksum_address(v)
    if t == "address[]" and isinstance(v, list | tuple):
        return [to_checksum_address(x) for x in v]
    return v


@dataclass(frozen=True)
class EventAbi:
    contract: str
    name: str
    inputs: list[dict[str, Any]]

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        indexed = [i for i in self.inputs if i.get("indexed")]
        plain = [i for i in self.inputs if not i.get("indexed")]
        out: dict[str, Any] = {}
        for inp, topic in zip(indexed, topics[1:], strict=False):
            t = _type(inp)
            if t in ("string", "bytes") or t.endswith("]") or t.startswith("("):
                out[inp["name"]] = topic  # dynamic indexed values are only their hash
            else:
                out[inp["name"]] = abi_decode([t], hb(topic))[0]
        values = abi_decode([_type(i) for i in plain], hb(data)) if plain else ()
        for inp, v in zip(plain, values, strict=True):
            out[inp["name"]] = v
        types = {i["name"]: _type(i) for i in self.inputs}
        return {k: _jsonable(_checksum(types[k], v)) for k, v in out.items()}


class EventDecoder:
    """topic0 → event ABI for the contracts the node follows (address → contract name)."""

    def __init__(self, contracts: dict[str, str], abis: dict[str, list[dict[str, Any]]]) -> None:
        self.by_address = {a.lower(): name for name, a in contracts.items()}
        self.events: dict[tuple[str, bytes], EventAbi] = {}
        for name, abi in abis.items():
            for item in abi:
                if item.get("type") != "event":
                    continue
                sig = f"{item['name']}({','.join(_type(i) for i in item['inputs'])})"
                self.events[(name, keccak(sig.encode()))] = EventAbi(
                    name, item["name"], item["inputs"]
                )

    @property
    def addresses(self) -> list[str]:
        return list(self.by_address)

    def decode(self, log: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
        name = self.by_address.get(str(log["address"]).lower())
        if name is None or not log.get("topics"):
            return None
        ev = self.events.get((name, hb(log["topics"][0])))
        if ev is None:
            return None
        return name, ev.name, ev.decode(log["topics"], log["data"])


def bloom_may_contain(bloom: bytes, item: bytes) -> bool:
    """The logsBloom test (yellow paper M3:2048): False means no log of `item` is in the block.
    The bloom is part of the verified header, so skipping a block on False is safe."""
    h = keccak(item)
    for i in (0, 2, 4):
        bit = ((h[i] << 8) | h[i + 1]) & 2047
        if not bloom[255 - bit // 8] & (1 << (bit % 8)):
            return False
    return True


class ChainIndex:
    def __init__(self, store: Any, chain_id: int) -> None:
        self.store = store
        self.chain_id = int(chain_id)

    # -- blocks --------------------------------------------------------------------------------
    def last_block(self) -> dict[str, Any] | None:
        return self.store.one(
            "SELECT * FROM node_blocks WHERE chain_id = ? ORDER BY number DESC LIMIT 1",
            (self.chain_id,),
        )

    def block(self, number: int) -> dict[str, Any] | None:
        return self.store.one(
            "SELECT * FROM node_blocks WHERE chain_id = ? AND number = ?", (self.chain_id, number)
        )

    def add_blocks(
        self, blocks: Iterable[tuple[Any, list[tuple[dict[str, Any], str, str, dict[str, Any]]]]]
    ) -> int:
        """Write verified headers and their decoded events in one transaction (all or nothing, so
        a crash never leaves an event without its block or indexes a block twice)."""
        import time

        n = 0
        now = time.time()
        with self.store.transaction():
            for header, events in blocks:
                self.store.execute(
                    "INSERT INTO node_blocks(chain_id, number, hash, parent_hash, state_root,"
                    " receipts_root, timestamp, events, verified_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        self.chain_id,
                        header.number,
                        header.hash,
                        header.parent_hash,
                        header.state_root,
                        header.receipts_root,
                        header.timestamp,
                        len(events),
                        now,
                    ),
                )
                for log, contract, event, args in events:
                    self.store.execute(
                        "INSERT INTO node_events(chain_id, block_number, block_hash, log_index, tx_hash,"
                        " contract, event, args) VALUES (?,?,?,?,?,?,?,?)",
                        (
                            self.chain_id,
                            header.number,
                            header.hash,
                            hi(log["logIndex"]),
                            str(log["transactionHash"]),
                            contract,
                            event,
                            json.dumps(args),
                        ),
                    )
                    self._apply(
                        header.number,
                        hi(log["logIndex"]),
                        str(log["transactionHash"]),
                        contract,
                        event,
                        args,
                    )
                    n += 1
        return n

    def rollback(self, ancestor: int) -> int:
        """Forget every block above `ancestor` and rebuild the projections from what is left."""
        with self.store.transaction():
            gone = self.store.execute(
                "DELETE FROM node_blocks WHERE chain_id = ? AND number > ?",
                (self.chain_id, ancestor),
            ).rowcount
            self.store.execute(
                "DELETE FROM node_events WHERE chain_id = ? AND block_number > ?",
                (self.chain_id, ancestor),
            )
            for t in PROJECTIONS:
                self.store.execute(f"DELETE FROM {t} WHERE chain_id = ?", (self.chain_id,))
            for e in self.store.query(
                "SELECT * FROM node_events WHERE chain_id = ? ORDER BY block_number, log_index",
                (self.chain_id,),
            ):
                self._apply(
                    e["block_number"],
                    e["log_index"],
                    e["tx_hash"],
                    e["contract"],
                    e["event"],
                    json.loads(e["args"]),
                )
        return int(gone)

    # -- reads ---------------------------------------------------------------------------------
    def events(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT * FROM node_events WHERE chain_id = ?"
            + (" AND event = ?" if event else "")
            + " ORDER BY block_number, log_index",
            (self.chain_id, event) if event else (self.chain_id,),
        )
        out = []
        for r in rows:
            r["args"] = json.loads(r["args"])
            if all(str(r["args"].get(k)).lower() == str(v).lower() for k, v in match.items()):
                out.append(r)
        return out

    def inference(self, inference_id: int) -> dict[str, Any] | None:
        return self.store.one(
            "SELECT * FROM node_inferences WHERE chain_id = ? AND inference_id = ?",
            (self.chain_id, int(inference_id)),
        )

    def counts(self) -> dict[str, int]:
        out = {}
        for t in (*PROJECTIONS, "node_events"):
            row = self.store.one(
                f"SELECT COUNT(*) AS n FROM {t} WHERE chain_id = ?", (self.chain_id,)
            )
            out[t.removeprefix("node_")] = int(row["n"]) if row else 0
        return out

    # -- projections -----------------------------------------------------------------------------
    def _apply(
        self, block: int, log_index: int, tx: str, contract: str, event: str, a: dict[str, Any]
    ) -> None:
        x = self.store.execute
        c = self.chain_id
        if event == "DatanetCreated":
            x(
                "INSERT OR REPLACE INTO node_datanets VALUES (?,?,?,?,?,?)",
                (
                    c,
                    int(a["datanetId"]),
                    a["owner"],
                    a.get("metadataHash"),
                    a.get("metadataURI"),
                    block,
                ),
            )
        elif event == "DatanetOwnershipTransferred":
            x(
                "UPDATE node_datanets SET owner = ? WHERE chain_id = ? AND datanet_id = ?",
                (a["newOwner"], c, int(a["datanetId"])),
            )
        elif event == "SnapshotPublished":
            x(
                "INSERT OR REPLACE INTO node_snapshots VALUES (?,?,?,?,?,?)",
                (
                    c,
                    int(a["datanetId"]),
                    int(a["version"]),
                    a.get("root"),
                    int(a.get("recordCount", 0)),
                    block,
                ),
            )
        elif event == "ContributionsBound":
            x(
                "INSERT OR REPLACE INTO node_contributions VALUES (?,?,?,?,?,?,?)",
                (
                    c,
                    block,
                    log_index,
                    int(a["datanetId"]),
                    int(a["version"]),
                    a["contributor"],
                    len(a.get("contentHashes") or []),
                ),
            )
        elif event == "ModelRegistered":
            x(
                "INSERT OR REPLACE INTO node_models VALUES (?,?,?,?,?,0,?)",
                (
                    c,
                    int(a["modelId"]),
                    a["owner"],
                    a.get("adapterHash"),
                    str(a.get("pricePerInference", 0)),
                    block,
                ),
            )
        elif event == "ModelPriceChanged":
            x(
                "UPDATE node_models SET price_wei = ? WHERE chain_id = ? AND model_id = ?",
                (str(a["pricePerInference"]), c, int(a["modelId"])),
            )
        elif event == "ModelVersionRetired":
            x(
                "UPDATE node_models SET retired = 1 WHERE chain_id = ? AND model_id = ?",
                (c, int(a["modelId"])),
            )
        elif event == "InferencePaid":
            x(
                "INSERT OR REPLACE INTO node_inferences(chain_id, inference_id, model_id, payer, node, fee_wei,"
                " status, paid_block, paid_tx, updated_block) VALUES (?,?,?,?,?,?,'paid',?,?,?)",
                (
                    c,
                    int(a["inferenceId"]),
                    int(a["modelId"]),
                    a["payer"],
                    a.get("node"),
                    str(a["fee"]),
                    block,
                    tx,
                    block,
                ),
            )
        elif event == "AttributionRecorded":
            weights = [
                {"contributor": who, "bps": int(b)}
                for who, b in zip(a.get("contributors", []), a.get("bps", []), strict=False)
            ]
            x(
                "UPDATE node_inferences SET status = 'recorded', node = ?, report_hash = ?, contributors = ?,"
                " recorded_block = ?, updated_block = ? WHERE chain_id = ? AND inference_id = ?",
                (
                    a["node"],
                    a["reportHash"],
                    json.dumps(weights),
                    block,
                    block,
                    c,
                    int(a["inferenceId"]),
                ),
            )
        elif event in ("Challenged", "ChallengeResolved", "FeeSplit", "InferenceRefunded"):
            iid = int(a["inferenceId"])
            if event == "Challenged":
                x(
                    "UPDATE node_inferences SET status = 'challenged', challenger = ?, updated_block = ?"
                    " WHERE chain_id = ? AND inference_id = ?",
                    (a["challenger"], block, c, iid),
                )
            elif event == "ChallengeResolved":
                status = "voided" if a["upheld"] else "challenge_rejected"
                x(
                    "UPDATE node_inferences SET status = ?, slashed_wei = ?, updated_block = ?"
                    " WHERE chain_id = ? AND inference_id = ?",
                    (status, str(a.get("slashed", 0)), block, c, iid),
                )
            elif event == "FeeSplit":
                x(
                    "UPDATE node_inferences SET status = 'finalized', updated_block = ?"
                    " WHERE chain_id = ? AND inference_id = ?",
                    (block, c, iid),
                )
            else:
                x(
                    "UPDATE node_inferences SET status = 'voided', updated_block = ?"
                    " WHERE chain_id = ? AND inference_id = ?",
                    (block, c, iid),
                )
        elif event in ("Staked", "Withdrawn", "Slashed", "UnstakeRequested"):
            who, role = a["account"], int(a["role"])
            x(
                "INSERT OR IGNORE INTO node_stakes(chain_id, account, role, block_number) VALUES (?,?,?,?)",
                (c, who, role, block),
            )
            if event == "Staked":
                x(
                    "UPDATE node_stakes SET active_wei = ?, block_number = ? WHERE chain_id = ? AND account = ?"
                    " AND role = ?",
                    (str(a["active"]), block, c, who, role),
                )
            elif event == "UnstakeRequested":
                row = self.store.one(
                    "SELECT active_wei FROM node_stakes WHERE chain_id = ? AND account = ? AND role = ?",
                    (c, who, role),
                )
                left = max(0, int(row["active_wei"] if row else 0) - int(a["amount"]))
                x(
                    "UPDATE node_stakes SET active_wei = ?, block_number = ? WHERE chain_id = ?"
                    " AND account = ? AND role = ?",
                    (str(left), block, c, who, role),
                )
            elif event == "Slashed":
                row = self.store.one(
                    "SELECT active_wei, slashed_wei FROM node_stakes WHERE chain_id = ? AND account = ?"
                    " AND role = ?",
                    (c, who, role),
                )
                assert row is not None
                x(
                    "UPDATE node_stakes SET active_wei = ?, slashed_wei = ?, block_number = ?"
                    " WHERE chain_id = ? AND account = ? AND role = ?",
                    (
                        str(max(0, int(row["active_wei"]) - int(a["amount"]))),
                        str(int(row["slashed_wei"]) + int(a["amount"])),
                        block,
                        c,
                        who,
                        role,
                    ),
                )
