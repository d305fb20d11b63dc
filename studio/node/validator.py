"""`--validator`: re-check other nodes' recorded attributions and challenge the ones that are wrong.

For each inference another node recorded (taken from the verified chain index), sampled
deterministically by inference id: fetch the report from the serving node (`peers` in the node
config: their API URLs), fetch the adapter (`GET /v1/models/{id}/adapter`) and check its hash is
the one registered on chain and the one this validator holds, check that the report's hash and
weights are what was recorded, then re-run the report (the attribution is deterministic) and
compare. A mismatch is challenged with the bond while the challenge window is open. Verdicts go
to the log, the `node_validations` table and /metrics."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
import zipfile
from typing import Any

import requests

from studio.core.errors import StudioError

from . import chainstate

log = logging.getLogger("studio.node.validator")


class Validator:
    def __init__(self, node: Any, peers: list[str] | None = None) -> None:
        self.node = node
        self.studio = node.studio
        self.peers = list(peers if peers is not None else getattr(node.config, "peers", []) or [])
        self.checked = 0
        self.challenged = 0
        self.last: dict[str, Any] | None = None

    def status(self) -> dict[str, Any]:
        return {"checked": self.checked, "challenged": self.challenged, "last": self.last}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - the validator thread must keep going
                log.exception("validator error")
            stop.wait(self.node.config.validator_interval_s)

    def _sampled(self, inference_id: int) -> bool:
        rate = float(self.node.config.validator_sample)
        h = int.from_bytes(hashlib.sha256(str(inference_id).encode()).digest()[:8], "big")
        return h / 2**64 < rate

    def candidates(self) -> list[dict[str, Any]]:
        cid = int(self.studio.chain.chain_id)
        me = (self.node.address or "").lower()
        rows = self.studio.store.query(
            "SELECT i.* FROM node_inferences i LEFT JOIN node_validations v"
            " ON v.chain_id = i.chain_id AND v.inference_id = i.inference_id"
            " WHERE i.chain_id = ? AND i.status = 'recorded' AND v.inference_id IS NULL"
            " ORDER BY i.inference_id",
            (cid,),
        )
        return [
            r for r in rows if str(r["node"]).lower() != me and self._sampled(r["inference_id"])
        ]

    def check_once(self) -> list[dict[str, Any]]:
        out = []
        for inf in self.candidates():
            verdict, detail = self._check(inf)
            challenge_tx = None
            if verdict == "mismatch":
                challenge_tx = self._challenge(inf, detail)
                if challenge_tx is None:
                    verdict = "mismatch_unchallenged"
            self._store(inf, verdict, detail, challenge_tx)
            self.checked += 1
            self.node.metrics.validations.labels(verdict).inc()
            self.last = {"inference_id": inf["inference_id"], "verdict": verdict, "detail": detail}
            log.info(
                "validated inference %s of node %s: %s",
                inf["inference_id"],
                inf["node"],
                verdict,
                extra={"detail": detail, "challenge_tx": challenge_tx},
            )
            out.append({**self.last, "challenge_tx": challenge_tx})
        return out

    # -- one check -----------------------------------------------------------------------------
    def _fetch_report(self, inference_id: int) -> tuple[dict[str, Any], str] | None:
        for url in self.peers:
            try:
                r = requests.get(f"{url}/v1/inferences/{inference_id}/attribution", timeout=30)
            except requests.RequestException:
                continue
            if r.status_code == 200:
                return r.json()["report"], url
        return None

    def _check(self, inf: dict[str, Any]) -> tuple[str, str]:
        got = self._fetch_report(int(inf["inference_id"]))
        if got is None:
            return "unavailable", "no peer serves the report of this inference"
        report, url = got
        from studio.attribution import report as R

        if (
            R.compute_hash(report) != inf["report_hash"]
            or report.get("report_hash") != inf["report_hash"]
        ):
            return "mismatch", "the served report does not hash to the recorded reportHash"
        recorded = sorted(
            (w["contributor"].lower(), int(w["bps"]))
            for w in json.loads(inf["contributors"] or "[]")
        )
        claimed = sorted((w["contributor"].lower(), int(w["bps"])) for w in report["weights"])
        if recorded != claimed:
            return "mismatch", "the recorded weights are not the report's"
        model_id = report["model"]["id"]
        problem = self._check_adapter(url, model_id, inf)
        if problem:
            return "skipped", problem
        try:
            res = self.studio.attribution.verify(report)
        except StudioError as e:
            return "skipped", f"cannot re-run: {e}"
        if res["match"] or res["match_within_tolerance"]:
            return "match", "re-run gives the same report"
        return "mismatch", "re-run differs in " + ", ".join(res["differences"][:6])

    def _check_adapter(self, url: str, model_id: str, inf: dict[str, Any]) -> str | None:
        try:
            r = requests.get(f"{url}/v1/models/{model_id}/adapter", timeout=60)
        except requests.RequestException as e:
            return f"adapter unavailable ({type(e).__name__})"
        if r.status_code != 200:
            return f"adapter unavailable (HTTP {r.status_code})"
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            weights = z.read("adapter_model.safetensors")
        fetched = hashlib.sha256(weights).hexdigest()
        row = self.studio.store.one(
            "SELECT adapter_hash FROM node_models WHERE chain_id = ? AND model_id = ?",
            (int(self.studio.chain.chain_id), int(_model_of(self.studio, inf))),
        )
        onchain = str(row["adapter_hash"] if row else "").removeprefix("0x")
        if onchain and onchain != fetched:
            return "the served adapter is not the one registered on chain"
        try:
            local = self.studio.models.get(model_id).card.get("adapter_hash", "")
        except StudioError:
            return f"this validator does not hold model {model_id}"
        if str(local).removeprefix("0x") != fetched:
            return "this validator's copy of the adapter differs from the served one"
        return None

    def _challenge(self, inf: dict[str, Any], detail: str) -> str | None:
        from studio.chain import ledger, staking

        try:
            state = ledger.inference(self.studio, int(inf["inference_id"]))
            closes = state["challenge_closes_at"]
            if state["status"] != "recorded" or (
                closes and staking.chain_now(self.studio) >= closes
            ):
                log.warning("inference %s: challenge window closed", inf["inference_id"])
                return None
            res = chainstate.challenge(self.studio, self.node.account(), int(inf["inference_id"]))
        except StudioError as e:
            log.error("challenge of inference %s failed: %s", inf["inference_id"], e)
            return None
        self.challenged += 1
        self.node.metrics.challenges.inc()
        return str(res["tx"])

    def _store(self, inf: dict[str, Any], verdict: str, detail: str, tx: str | None) -> None:
        self.studio.store.execute(
            "INSERT OR REPLACE INTO node_validations(chain_id, inference_id, node, verdict, detail,"
            " challenge_tx, checked_at) VALUES (?,?,?,?,?,?,?)",
            (
                int(self.studio.chain.chain_id),
                int(inf["inference_id"]),
                inf["node"],
                verdict,
                detail,
                tx,
                time.time(),
            ),
        )


def _model_of(studio: Any, inf: dict[str, Any]) -> int:
    return int(inf["model_id"])
