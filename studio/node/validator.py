"""`--validator`: re-check other nodes' recorded attributions and challenge the ones that are wrong.

For each inference another node recorded (taken from the verified chain index), sampled
deterministically by inference id: fetch the report from the serving node (`peers` in the node
config: their API URLs) and check that its hash and weights are what was recorded; fetch the
adapter (`GET /v1/models/{id}/adapter`), verify its bytes against the adapter hash registered on
chain and install it in this data home (adapters.py); then re-run the report with THAT adapter
(the attribution is deterministic) and compare. The method comes from
`Attributor.choose_method`: exact when the version allows it here (replay record present, the
estimate fits this machine), else the fast method the report names; an exact report that cannot
be re-run exactly here is skipped, never challenged. A mismatch is challenged with the bond while
the challenge window is open; a served adapter that is not the registered one is refused (logged,
never challenged on those bytes). Verdicts and the method used go to the log, the
`node_validations` table and /metrics."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

import requests

from studio.core.errors import StudioError

from . import adapters, chainstate

log = logging.getLogger("studio.node.validator")


class Validator:
    def __init__(self, node: Any, peers: list[str] | None = None) -> None:
        self.node = node
        self.studio = node.studio
        self.peers = list(peers if peers is not None else getattr(node.config, "peers", []) or [])
        self.checked = 0
        self.challenged = 0
        self.last: dict[str, Any] | None = None
        self._attributors: dict[str, Any] = {}  # adapter hash -> an Attributor re-running with it

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
            verdict, detail, how = self._check(inf)
            challenge_tx = None
            if verdict == "mismatch":
                challenge_tx = self._challenge(inf, detail)
                if challenge_tx is None:
                    verdict = "mismatch_unchallenged"
            method = how.get("method")
            self._store(inf, verdict, detail, challenge_tx, method, how.get("adapter_hash"))
            self.checked += 1
            self.node.metrics.validations.labels(verdict).inc()
            if method:
                self.node.metrics.reruns.labels(method).inc()
            self.last = {
                "inference_id": inf["inference_id"],
                "verdict": verdict,
                "detail": detail,
                "method": method,
            }
            (log.error if verdict == "adapter_refused" else log.info)(
                "validated inference %s of node %s: %s (method %s)",
                inf["inference_id"],
                inf["node"],
                verdict,
                method or "none",
                extra={"detail": detail, "challenge_tx": challenge_tx, "method": method},
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

    def _check(self, inf: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """(verdict, detail, {method, adapter_hash}) for one recorded inference."""
        got = self._fetch_report(int(inf["inference_id"]))
        if got is None:
            return "unavailable", "no peer serves the report of this inference", {}
        report, url = got
        from studio.attribution import report as R

        if (
            R.compute_hash(report) != inf["report_hash"]
            or report.get("report_hash") != inf["report_hash"]
        ):
            return "mismatch", "the served report does not hash to the recorded reportHash", {}
        recorded = sorted(
            (w["contributor"].lower(), int(w["bps"]))
            for w in json.loads(inf["contributors"] or "[]")
        )
        claimed = sorted((w["contributor"].lower(), int(w["bps"])) for w in report["weights"])
        if recorded != claimed:
            return "mismatch", "the recorded weights are not the report's", {}
        model_id = str(report["model"]["id"])
        row = self.studio.store.one(
            "SELECT adapter_hash FROM node_models WHERE chain_id = ? AND model_id = ?",
            (int(self.studio.chain.chain_id), int(inf["model_id"])),
        )
        onchain = str(row["adapter_hash"] or "") if row else ""
        try:
            version = adapters.install(
                self.studio, model_id, adapters.fetch(url, model_id), onchain
            )
        except adapters.AdapterUnavailable as e:
            return "skipped", str(e), {}
        except adapters.AdapterRefused as e:
            return "adapter_refused", f"{url}: {e}", {}
        return self._rerun(report, version)

    def _attributor(self, version: Any) -> Any:
        """One Attributor per fetched adapter: it sees the report's model id as that adapter."""
        from studio.attribution.service import Attributor

        key = str(version.card["adapter_hash"])
        if key not in self._attributors:
            models = adapters.FetchedModels(self.studio.models, {version.id: version})
            self._attributors[key] = Attributor(
                models=models,  # type: ignore[arg-type]
                datanets=self.studio.datanets,
                events=self.studio.events,
                paths=self.studio.paths,
            )
        return self._attributors[key]

    def _rerun(self, report: dict[str, Any], version: Any) -> tuple[str, str, dict[str, Any]]:
        how: dict[str, Any] = {"adapter_hash": version.card["adapter_hash"]}
        att = self._attributor(version)
        named = str(report["method"]["name"])
        fast = named if named != "exact" else "gradient"
        chosen = att.choose_method(version.id, fallback=fast)
        if named == "exact" and chosen != "exact":
            return (
                "skipped",
                "the report is exact, and this version cannot be re-run exactly here",
                how,
            )
        # A report is re-run with the method it names (the bytes must be what that method
        # gives); exact decides whenever the report is exact and the version allows it here.
        how["method"] = named
        try:
            res = att.verify(report)
        except StudioError as e:
            return "skipped", f"cannot re-run: {e}", how
        note = "" if chosen == named else f" ({chosen} available here; the report names {named})"
        if res["match"] or res["match_within_tolerance"]:
            return "match", f"re-run with {named} gives the same report{note}", how
        return (
            "mismatch",
            f"re-run with {named} differs in " + ", ".join(res["differences"][:6]) + note,
            how,
        )

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

    def _store(
        self,
        inf: dict[str, Any],
        verdict: str,
        detail: str,
        tx: str | None,
        method: str | None,
        adapter_hash: str | None,
    ) -> None:
        self.studio.store.execute(
            "INSERT OR REPLACE INTO node_validations(chain_id, inference_id, node, verdict, detail,"
            " challenge_tx, checked_at, method, adapter_hash) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                int(self.studio.chain.chain_id),
                int(inf["inference_id"]),
                inf["node"],
                verdict,
                detail,
                tx,
                time.time(),
                method,
                adapter_hash,
            ),
        )
