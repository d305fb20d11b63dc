"""The node's OpenAI-compatible HTTP API (FastAPI), for the official `openai` client and anything
that speaks its protocol:

    GET  /v1/models                     the fine-tuned versions this node serves
    POST /v1/completions                prompt → text      (stream: SSE)
    POST /v1/chat/completions           messages → message (stream: SSE, role in the first delta)
    GET  /v1/attribution/{id}           the whole signed attribution report of an answer
    GET  /v1/models/{id}/adapter        the LoRA adapter (zip) so a validator can re-run reports
    GET  /health, GET /metrics          status snapshot; Prometheus text format

Every answer carries its attribution: the X-Attribution-Report-Id header and a top-level
`attribution` object (on the final chunk of a stream). Requests are checked completely (model,
limits, context length, payment) before a stream starts, so a refusal is always an HTTP error with
an OpenAI-style body; generation runs on the node's model worker thread, never in the event loop,
and a slow reader only slows its own stream."""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import time
import zipfile
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from studio.core.errors import NotFound, StudioError

from .config import api_token
from .service import ApiError, Job, Node


def _error(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status)


def attribution_object(job: Job, report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "report_id": job.report_id,
        "report_hash": report["report_hash"],
        "weights": report["weights"],
        "method": report["method"]["name"],
        "inference_id": job.inference_id,
        "signer": (report.get("signature") or {}).get("signer"),
        "url": f"/v1/attribution/{job.report_id}",
    }


def _int(body: dict[str, Any], name: str, default: int) -> int:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or int(v) != v:
        raise ApiError(400, f"{name} must be an integer.", param=name, code="invalid_type")
    return int(v)


def _float(body: dict[str, Any], name: str, default: float) -> float:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ApiError(400, f"{name} must be a number.", param=name, code="invalid_type")
    return float(v)


def _prompt_of(body: dict[str, Any], chat: bool) -> str:
    if chat:
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise ApiError(400, "messages must be a non-empty list.", param="messages")
        parts = []
        for m in msgs:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise ApiError(400, "Each message needs a role and text content.", param="messages")
            parts.append((str(m.get("role", "user")), m["content"]))
        if len(parts) == 1:
            return parts[0][1]
        return "\n".join(f"{role}: {text}" for role, text in parts)
    p = body.get("prompt")
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], str):
        p = p[0]
    if not isinstance(p, str):
        raise ApiError(400, "prompt must be a string.", param="prompt")
    return p


def _job(body: dict[str, Any], request: Request, chat: bool) -> Job:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required.", param="model")
    iid: Any = body.get("inference_id", request.headers.get("x-inference-id"))
    if iid is not None:
        try:
            iid = int(iid)
        except (TypeError, ValueError) as e:
            raise ApiError(400, "inference_id must be an integer.", param="inference_id") from e
        if iid < 1:
            raise ApiError(400, "inference_id must be positive.", param="inference_id")
    name = "max_completion_tokens" if chat and "max_completion_tokens" in body else "max_tokens"
    return Job(
        model=model,
        prompt=_prompt_of(body, chat),
        chat=chat,
        max_tokens=_int(body, name, 64),
        temperature=_float(body, "temperature", 0.0),
        seed=_int(body, "seed", 0),
        inference_id=iid,
    )


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title="OpenLedger Studio node", docs_url=None, redoc_url=None)
    cfg = node.config
    token = api_token(cfg)
    state = {"in_flight": 0}

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if token is not None and path != "/health":
            got = request.headers.get("authorization", "")
            if not (
                got.startswith("Bearer ") and hmac.compare_digest(got[7:].encode(), token.encode())
            ):
                return _error(
                    ApiError(
                        401,
                        "Missing or wrong API token: send Authorization: Bearer <token>.",
                        type="authentication_error",
                        code="invalid_api_key",
                    )
                )
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > cfg.max_request_bytes:
            return _error(
                ApiError(
                    413,
                    f"The request is larger than {cfg.max_request_bytes} bytes.",
                    code="request_too_large",
                )
            )
        return await call_next(request)

    async def read_json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > cfg.max_request_bytes:
            raise ApiError(
                413,
                f"The request is larger than {cfg.max_request_bytes} bytes.",
                code="request_too_large",
            )
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise ApiError(
                400, f"The request body is not valid JSON ({e}).", code="invalid_json"
            ) from e
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
        return body

    async def complete(request: Request, chat: bool) -> Response:
        endpoint = "chat" if chat else "completions"
        if state["in_flight"] >= cfg.max_concurrent:
            node.metrics.requests.labels(endpoint, "429").inc()
            return _error(
                ApiError(
                    429,
                    "Too many requests in flight; retry shortly.",
                    type="rate_limit_error",
                    code="rate_limit_exceeded",
                )
            )
        state["in_flight"] += 1
        started = time.perf_counter()
        try:
            body = await read_json(request)
            job = _job(body, request, chat)
            await run_in_threadpool(node.check, job)
            if body.get("stream"):
                return _stream(node, job, chat, started)
            assert node.worker is not None
            out = await asyncio.wrap_future(node.worker.submit(lambda: node.execute(job)))
            node.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            node.metrics.requests.labels(endpoint, "200").inc()
            return JSONResponse(
                _full_response(job, out, chat),
                headers={"X-Attribution-Report-Id": job.report_id} if out["report"] else {},
            )
        except ApiError as e:
            node.metrics.requests.labels(endpoint, str(e.status)).inc()
            node.counters["refused"] += 1
            return _error(e)
        except StudioError as e:
            node.metrics.requests.labels(endpoint, "400").inc()
            return _error(ApiError(400, str(e)))
        finally:
            state["in_flight"] -= 1

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await complete(request, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await complete(request, chat=True)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": mid,
                    "object": "model",
                    "created": m["created"],
                    "owned_by": node.address or "studio-node",
                    "onchain_id": m["onchain_id"],
                    "adapter_hash": m["version"].card.get("adapter_hash"),
                }
                for mid, m in node.hosted().items()
            ],
        }

    @app.get("/v1/models/{model_id}/adapter")
    async def adapter(model_id: str) -> Response:
        try:
            m = node.model(model_id)
        except ApiError as e:
            return _error(e)
        adir = m["version"].adapter_dir
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(adir.iterdir()):
                if p.is_file():
                    z.write(p, p.name)
            # The replay record, so a validator can re-run an exact report.
            replay = m["version"].dir / "replay"
            if replay.is_dir():
                for p in sorted(replay.iterdir()):
                    if p.is_file():
                        z.write(p, f"replay/{p.name}")
            z.writestr("card.json", json.dumps(m["version"].card, sort_keys=True))
        return Response(
            buf.getvalue(),
            media_type="application/zip",
            headers={"X-Adapter-Hash": str(m["version"].card.get("adapter_hash"))},
        )

    @app.get("/v1/attribution/{report_id}")
    async def attribution(report_id: str) -> Response:
        try:
            row = await run_in_threadpool(node.report_row, report_id)
        except NotFound as e:
            return _error(ApiError(404, str(e), code="report_not_found"))
        return JSONResponse(
            {
                "id": report_id,
                "object": "attribution.report",
                "inference_id": row["inference_id"],
                "report": row["report"],
            }
        )

    @app.get("/v1/inferences/{inference_id}/attribution")
    async def inference_attribution(inference_id: int) -> Response:
        row = await run_in_threadpool(
            node.studio.store.one,
            "SELECT report_id FROM node_reports WHERE inference_id = ? ORDER BY created_at DESC",
            (inference_id,),
        )
        if row is None:
            return _error(
                ApiError(
                    404, f"This node served no inference {inference_id}.", code="report_not_found"
                )
            )
        return await attribution(row["report_id"])

    @app.get("/health")
    async def health() -> dict[str, Any]:
        st = await run_in_threadpool(node.status)
        return {"status": "ok", **st}

    @app.get("/metrics")
    async def metrics() -> Response:
        data = await run_in_threadpool(node.metrics.render)
        return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _full_response(job: Job, out: dict[str, Any], chat: bool) -> dict[str, Any]:
    finish = "length" if out["tokens"] >= job.max_tokens else "stop"
    base: dict[str, Any] = {
        "id": ("chatcmpl-" if chat else "cmpl-") + job.report_id[4:],
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": job.model,
        "usage": {
            "prompt_tokens": 0,
            "completion_tokens": out["tokens"],
            "total_tokens": out["tokens"],
        },
        "attribution": attribution_object(job, out["report"]),
    }
    if chat:
        base["choices"] = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": out["text"]},
                "finish_reason": finish,
            }
        ]
    else:
        base["choices"] = [
            {"index": 0, "text": out["text"], "logprobs": None, "finish_reason": finish}
        ]
    return base


def _stream(node: Node, job: Job, chat: bool, started: float) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cid = ("chatcmpl-" if chat else "cmpl-") + job.report_id[4:]
    created = int(time.time())
    obj = "chat.completion.chunk" if chat else "text_completion"

    def on_token(text: str) -> None:
        loop.call_soon_threadsafe(q.put_nowait, ("token", text))

    def work() -> None:
        try:
            out = node.execute(job, on_token=on_token)
            loop.call_soon_threadsafe(q.put_nowait, ("done", out))
        except BaseException as e:  # noqa: BLE001 - reported in the stream
            loop.call_soon_threadsafe(q.put_nowait, ("error", e))

    assert node.worker is not None
    node.worker.submit(work)

    def chunk(delta: str | None, finish: str | None = None, **extra: Any) -> str:
        if chat:
            d: dict[str, Any] = {} if delta is None else {"content": delta}
            choice: dict[str, Any] = {"index": 0, "delta": d, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
        doc = {
            "id": cid,
            "object": obj,
            "created": created,
            "model": job.model,
            "choices": [choice],
            **extra,
        }
        return f"data: {json.dumps(doc)}\n\n"

    async def events() -> AsyncIterator[str]:
        if chat:
            first = {
                "id": cid,
                "object": obj,
                "created": created,
                "model": job.model,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
            yield f"data: {json.dumps(first)}\n\n"
        while True:
            kind, value = await q.get()
            if kind == "token":
                yield chunk(value)
            elif kind == "done":
                finish = "length" if value["tokens"] >= job.max_tokens else "stop"
                yield chunk(None, finish, attribution=attribution_object(job, value["report"]))
                node.metrics.latency.labels("chat" if chat else "completions").observe(
                    time.perf_counter() - started
                )
                node.metrics.requests.labels("chat" if chat else "completions", "200").inc()
                break
            else:
                err = ApiError(500, f"The model failed: {value}", type="server_error")
                yield f"data: {json.dumps(err.body())}\n\n"
                break
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"X-Attribution-Report-Id": job.report_id, "Cache-Control": "no-cache"},
    )
