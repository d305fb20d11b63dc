"""The light node as one object the CLI (`studio node run`) and the GUI's Node page both hold:

    node = Node(studio, NodeConfig(...))
    node.start()          # follower, model worker, recorder, validator, API server (threads)
    node.status()         # sync height, verified-up-to, served requests, validator activity
    node.stop()           # finish in-flight requests, stop every thread, journal intact

Serving a paid request: the payment must be a verified InferencePaid event (receipt checked
against receiptsRoot) for a model this node hosts, and, by a storage proof against the verified
stateRoot, still unrecorded; the request is then claimed in the `node_served` journal (one row
per inference: a replay is refused), generated on the model worker, attributed, signed, and the
report's hash and weights are recorded on chain by the recorder thread, exactly once (the journal
row, the pipeline's idempotency key and the contract's own status check, across kill -9)."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from studio.core.errors import InvalidInput, NotFound, StudioError

from . import chainstate
from .config import NodeConfig, password_source
from .metrics import NodeMetrics
from .worker import ApiError, Job, ModelWorker, _crash_point

if TYPE_CHECKING:
    from studio.app import Studio

log = logging.getLogger("studio.node")


class Node:
    def __init__(self, studio: Studio, config: NodeConfig, *, chain: bool | None = None) -> None:
        self.studio = studio
        self.config = config
        self.use_chain = (config.require_payment or config.validator) if chain is None else chain
        self.metrics = NodeMetrics(self)
        self.worker: ModelWorker | None = None
        self.follower: Any = None
        self.validator: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._record_wake = threading.Event()
        self._server: Any = None
        self.started_at: float | None = None
        self.url: str | None = None
        self._account: Any = None
        self.address: str | None = None
        self._hosted: dict[str, dict[str, Any]] | None = None
        self._methods: dict[str, str] = {}  # model id -> the method "auto" chose for it
        self.counters = {"served": 0, "paid": 0, "recorded": 0, "refused": 0}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, *, serve_api: bool = True) -> Node:
        cfg = self.config
        if not cfg.loopback:
            from .config import api_token

            if not api_token(cfg):
                raise InvalidInput(
                    f"The API would listen on {cfg.host}, beyond this machine, without a token.",
                    hint="Set api_token_file (or $STUDIO_NODE_TOKEN), or bind to 127.0.0.1.",
                )
        self.studio.store.execute("DELETE FROM node_served WHERE status = 'serving'")
        if self.use_chain:
            self._unlock()
            self._start_follower()
        self.hosted()
        self.worker = ModelWorker()
        if self.use_chain and self._account is not None:
            self._spawn("recorder", self._recorder_loop)
        if cfg.validator:
            from .validator import Validator

            self.validator = Validator(self)
            self._spawn("validator", self.validator.run)
        if serve_api:
            self._start_api()
        self.started_at = time.time()
        log.info("node started", extra={"url": self.url, "models": list(self.hosted())})
        return self

    def stop(self) -> None:
        """Stop accepting requests, let in-flight ones finish, then stop every thread."""
        if self._server is not None:
            self._server.should_exit = True
            self._server_thread.join(timeout=60)
            self._server = None
        self._stop.set()
        self._record_wake.set()
        for t in self._threads:
            t.join(timeout=60)
        self._threads.clear()
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        log.info("node stopped")

    def wait(self) -> None:
        self._stop.wait()

    def _spawn(self, name: str, fn: Any) -> None:
        t = threading.Thread(target=fn, args=(self._stop,), name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _unlock(self) -> None:
        wallet = self.studio.wallet
        try:
            info = wallet.get(self.config.account)
        except StudioError:
            if self.config.require_payment:
                raise
            return  # a validator-less reader without a wallet still follows the chain
        self.address = info.address
        self._account = wallet.unlock(info.address, password_file=password_source(self.config))

    def account(self) -> Any:
        """The node's unlocked account (unlocked again from the same source after a timeout)."""
        if self._account is None:
            raise InvalidInput("This node has no account to sign with.")
        if self._account.locked:
            self._account = self.studio.wallet.unlock(
                self.address, password_file=password_source(self.config)
            )
        return self._account

    def _start_follower(self) -> None:
        from .follower import Follower, FollowerConfig

        chain = self.studio.chain
        dep = chain.deployment()
        cp_hash = self.config.checkpoint_hash
        if cp_hash is None and self.config.checkpoint_number == 0:
            row = self.studio.store.one(
                "SELECT genesis_hash FROM chain_identity WHERE chain_id = ?", (int(chain.chain_id),)
            )
            cp_hash = row["genesis_hash"] if row else None
        fc = FollowerConfig(
            rpc_url=str(chain.network.rpc_url),
            chain_id=int(chain.chain_id),
            contracts=dict(dep["contracts"]),
            checkpoint_number=self.config.checkpoint_number,
            checkpoint_hash=cp_hash,
            poll_s=self.config.poll_s,
            subscribe=self.config.subscribe,
            ws_url=self.config.ws_url,
        )
        self.follower = Follower(self.studio.store, fc)
        self.contracts = dict(dep["contracts"])
        try:
            self.follower.sync(max_steps=10_000)
        except StudioError as e:
            log.warning("first sync failed, following in the background: %s", e)
        self._spawn("follower", self.follower.run)

    def _start_api(self) -> None:
        import uvicorn

        from .api import create_app

        cfg = uvicorn.Config(
            create_app(self),
            host=self.config.host,
            port=self.config.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
            limit_concurrency=self.config.max_concurrent * 4,
        )
        server = uvicorn.Server(cfg)
        # Run off the main thread, uvicorn installs no signal handlers (Server.capture_signals):
        # SIGINT/SIGTERM stay ours, for the graceful shutdown.
        self._server = server
        self._server_thread = threading.Thread(target=server.run, name="api", daemon=True)
        self._server_thread.start()
        while not server.started:
            if not self._server_thread.is_alive():
                raise InvalidInput(f"The API could not listen on {self.config.api}.")
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        self.url = f"http://{host}:{port}"

    # -- what is served ---------------------------------------------------------------------------
    def hosted(self) -> dict[str, dict[str, Any]]:
        """model id → {card, onchain_id}: the fine-tuned versions this node serves."""
        if self._hosted is not None:
            return self._hosted
        models = self.studio.models
        ids = self.config.models or [
            m["id"] for m in models.list() if m.get("status") == "ready" and m.get("datanets")
        ]
        out: dict[str, dict[str, Any]] = {}
        for mid in ids:
            mv = models.get(mid)
            onchain = None
            if self.use_chain:
                row = self.studio.store.one(
                    "SELECT onchain_id FROM onchain_models WHERE model_id = ? AND chain_id = ?",
                    (mid, int(self.studio.chain.chain_id)),
                )
                onchain = int(row["onchain_id"]) if row else None
            out[mid] = {
                "version": mv,
                "onchain_id": onchain,
                "created": int(mv.dir.stat().st_mtime),
            }
        self._hosted = out
        return out

    def model(self, model_id: str) -> dict[str, Any]:
        m = self.hosted().get(model_id)
        if m is None:
            raise ApiError(
                404,
                f"The model '{model_id}' does not exist on this node.",
                code="model_not_found",
                param="model",
            )
        return m

    # -- one request ------------------------------------------------------------------------------
    def check(self, job: Job) -> None:
        """Everything that can refuse a request, before any output (so a stream never starts and
        then fails): model, limits, prompt length, and the payment (claimed in the journal)."""
        m = self.model(job.model)
        if not 1 <= job.max_tokens <= self.config.max_tokens_limit:
            raise ApiError(
                400,
                f"max_tokens must be between 1 and {self.config.max_tokens_limit}; got {job.max_tokens}.",
                code="invalid_value",
                param="max_tokens",
            )
        if job.temperature < 0 or job.temperature > 2:
            raise ApiError(400, "temperature must be between 0 and 2.", param="temperature")
        if not job.prompt.strip():
            raise ApiError(400, "The prompt is empty.", param="prompt")
        self._check_length(job, m)
        if job.inference_id is None:
            if self.config.require_payment:
                raise ApiError(
                    402,
                    "This node serves paid inferences only: pay on chain first and pass the inference "
                    "id (body field `inference_id` or header X-Inference-Id).",
                    code="payment_required",
                )
            return
        if not self.use_chain:
            raise ApiError(400, "This node does not follow a chain: leave out inference_id.")
        self._check_payment(job, m)
        self._claim(job)

    def _check_length(self, job: Job, m: dict[str, Any]) -> None:
        from studio.train.data import chat_prompt

        assert self.worker is not None
        srv = self.studio.models.server(m["version"].base_dir)

        def count() -> tuple[int, int]:
            text = chat_prompt(srv.tokenizer, job.prompt, chat=job.chat)
            n = len(srv.tokenizer(text, add_special_tokens=False)["input_ids"])
            limit = int(getattr(srv.base.config, "max_position_embeddings", 0) or 0)
            return n, limit

        n, limit = self.worker.submit(count).result()
        if limit and n + job.max_tokens > limit:
            raise ApiError(
                400,
                f"This model's maximum context length is {limit} tokens; the prompt has {n} and "
                f"max_tokens asks for {job.max_tokens} more.",
                code="context_length_exceeded",
                param="messages" if job.chat else "prompt",
            )

    def _check_payment(self, job: Job, m: dict[str, Any]) -> None:
        iid = int(job.inference_id or 0)
        deadline = time.monotonic() + self.config.payment_wait_s
        inf = self.follower.index.inference(iid)
        while inf is None and time.monotonic() < deadline:
            time.sleep(0.1)  # a payment mined a moment ago: wait for the follower to verify it
            inf = self.follower.index.inference(iid)
        if inf is None:
            raise ApiError(
                402,
                f"Inference {iid} is not paid: no verified InferencePaid event for it.",
                code="payment_required",
                param="inference_id",
            )
        if m["onchain_id"] is None or int(inf["model_id"]) != int(m["onchain_id"]):
            raise ApiError(
                403,
                f"Inference {iid} was paid for model #{inf['model_id']}, not for {job.model}.",
                code="wrong_model",
                param="inference_id",
            )
        bound = inf.get("node")
        if (
            inf["status"] == "paid"
            and bound
            and self.address
            and bound.lower() != self.address.lower()
        ):
            raise ApiError(
                403,
                f"Inference {iid} names another node ({bound}).",
                code="wrong_node",
                param="inference_id",
            )
        if inf["status"] != "paid":
            raise ApiError(409, f"Inference {iid} was already served.", code="already_served")
        from .verify import Header

        last = self.follower.index.last_block()
        hdr = Header(
            last["number"],
            last["hash"],
            last["parent_hash"],
            last["state_root"],
            last["receipts_root"],
            last["timestamp"],
        )
        state = chainstate.proven_inference(
            self.follower.rpc, hdr, self.contracts["AttributionLedger"], iid
        )
        if state["status"] != "paid":
            raise ApiError(409, f"Inference {iid} was already served.", code="already_served")

    def _claim(self, job: Job) -> None:
        now = time.time()
        cid = int(self.studio.chain.chain_id)
        try:
            with self.studio.store.transaction():
                self.studio.store.execute(
                    "DELETE FROM node_served WHERE chain_id = ? AND inference_id = ? AND status = 'failed'",
                    (cid, job.inference_id),
                )
                self.studio.store.execute(
                    "INSERT INTO node_served(chain_id, inference_id, model, status, created_at, updated_at)"
                    " VALUES (?,?,?,'serving',?,?)",
                    (cid, job.inference_id, job.model, now, now),
                )
        except sqlite3.IntegrityError as e:
            row = self.studio.store.one(
                "SELECT report_id FROM node_served WHERE chain_id = ? AND inference_id = ?",
                (cid, job.inference_id),
            )
            where = (
                f" Its attribution: /v1/attribution/{row['report_id']}."
                if row and row["report_id"]
                else ""
            )
            raise ApiError(
                409,
                f"Inference {job.inference_id} was already served.{where}",
                code="already_served",
            ) from e

    def execute(self, job: Job, on_token: Any = None) -> dict[str, Any]:
        """Generate, attribute and journal (runs on the model worker)."""
        try:
            text = self.studio.models.generate(
                job.model,
                job.prompt,
                max_new_tokens=job.max_tokens,
                seed=job.seed,
                temperature=job.temperature,
                chat=job.chat,
                on_token=on_token,
            )
            report = self._attribute(job, text) if self.config.attribution else None
        except BaseException as e:
            if job.inference_id is not None:
                self._journal(job, status="failed", error=f"{type(e).__name__}: {e}")
            raise
        self.counters["served"] += 1
        if job.inference_id is not None and report is not None:
            self._journal(job, status="served", report=report)
            _crash_point("after_served")
            self.counters["paid"] += 1
            self._record_wake.set()
        elif job.inference_id is not None:
            # Nothing to attribute (an empty answer, or attribution off): the payer can take the
            # fee back after the record timeout; the journal says why.
            self._journal(job, status="failed", error="no attribution report for this answer")
        elif report is not None:
            self._save_report(report, None, job.report_id)
        mv = self.hosted()[job.model]["version"]
        tok = self.studio.models.server(mv.base_dir).tokenizer
        tokens = len(tok(text, add_special_tokens=False)["input_ids"]) if text else 0
        self.metrics.tokens.inc(tokens)
        return {"text": text, "report": report, "tokens": tokens}

    def _attribute(self, job: Job, text: str) -> dict[str, Any] | None:
        if not text.strip():
            return None
        signer = self.account() if self._account is not None else None
        method = self.config.attribution_method
        if method == "auto":
            if job.model not in self._methods:
                self._methods[job.model] = self.studio.attribution.choose_method(
                    job.model, fallback="span"
                )
            method = self._methods[job.model]
        report = self.studio.attribution.attribute(
            job.model,
            job.prompt,
            text,
            method=method,
            top_k=self.config.attribution_top_k,
            signer=signer,
        )
        return dict(report)

    def _save_report(
        self, report: dict[str, Any], inference_id: int | None, report_id: str
    ) -> None:
        self.studio.store.execute(
            "INSERT OR IGNORE INTO node_reports(report_id, report_hash, model, chain_id, inference_id,"
            " report, created_at) VALUES (?,?,?,?,?,?,?)",
            (
                report_id,
                report["report_hash"],
                report["model"]["id"],
                int(self.studio.chain.chain_id) if inference_id is not None else None,
                inference_id,
                json.dumps(report, sort_keys=True),
                time.time(),
            ),
        )

    def _journal(
        self,
        job: Job,
        *,
        status: str,
        report: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        cid = int(self.studio.chain.chain_id)
        with self.studio.store.transaction():
            if report is not None:
                self._save_report(report, job.inference_id, job.report_id)
            self.studio.store.execute(
                "UPDATE node_served SET status = ?, report_id = ?, report_hash = ?, error = ?, updated_at = ?"
                " WHERE chain_id = ? AND inference_id = ?",
                (
                    status,
                    job.report_id if report else None,
                    report["report_hash"] if report else None,
                    error,
                    time.time(),
                    cid,
                    job.inference_id,
                ),
            )

    def report(self, report_id: str) -> dict[str, Any]:
        return dict(self.report_row(report_id)["report"])

    def report_row(self, report_id: str) -> dict[str, Any]:
        row = self.studio.store.one("SELECT * FROM node_reports WHERE report_id = ?", (report_id,))
        if row is None:
            raise NotFound(f"No attribution report {report_id} on this node.")
        row["report"] = json.loads(row["report"])
        return row

    # -- recording on chain -------------------------------------------------------------------------
    def record_pending(self) -> int:
        """Record every served-but-unrecorded inference (also what a crash left behind)."""
        cid = int(self.studio.chain.chain_id)
        rows = self.studio.store.query(
            "SELECT * FROM node_served WHERE chain_id = ? AND status = 'served' ORDER BY inference_id",
            (cid,),
        )
        done = 0
        for row in rows:
            report = self.report(row["report_id"])
            try:
                res = chainstate.record_attribution(
                    self.studio,
                    self.account(),
                    row["inference_id"],
                    report["report_hash"],
                    report["weights"],
                )
                tx, status, err = res["tx"], "recorded", None
                _crash_point("before_record_mark")
            except StudioError as e:
                onchain = self._onchain_record(row["inference_id"])
                if (
                    onchain is not None
                    and onchain["report_hash"] == report["report_hash"]
                    and (onchain["node"].lower() == str(self.address).lower())
                ):
                    tx, status, err = None, "recorded", None  # recorded before a crash
                else:
                    tx, status, err = None, "failed", str(e)
                    log.error("recording inference %s failed: %s", row["inference_id"], e)
            self.studio.store.execute(
                "UPDATE node_served SET status = ?, record_tx = ?, error = ?, updated_at = ?"
                " WHERE chain_id = ? AND inference_id = ?",
                (status, tx, err, time.time(), cid, row["inference_id"]),
            )
            if status == "recorded":
                done += 1
                self.counters["recorded"] += 1
                self.metrics.recorded.inc()
        return done

    def _onchain_record(self, inference_id: int) -> dict[str, Any] | None:
        from studio.chain import ledger

        try:
            return ledger.inference(self.studio, inference_id)
        except StudioError:
            return None

    def _recorder_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.record_pending()
            except Exception:  # noqa: BLE001 - keep recording later
                log.exception("recorder error")
            self._record_wake.wait(self.config.poll_s * 5)
            self._record_wake.clear()

    # -- status ---------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        served = {
            r["status"]: int(r["n"])
            for r in self.studio.store.query(
                "SELECT status, COUNT(*) AS n FROM node_served GROUP BY status"
            )
        }
        sync = self.follower.status() if self.follower is not None else None
        return {
            "url": self.url,
            "address": self.address,
            "started_at": self.started_at,
            "models": [
                {"id": k, "onchain_id": v["onchain_id"]} for k, v in (self._hosted or {}).items()
            ],
            "sync": sync,
            "requests": dict(self.counters),
            "paid_inferences": served,
            "queue": self.worker.queued if self.worker else 0,
            "validator": self.validator.status() if self.validator is not None else None,
        }
