"""The node's OpenAI-compatible API, driven by the official `openai` client against a real uvicorn
on a free port, serving two LoRA adapters of the tiny model on one base."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from studio.attribution import report as R
from studio.node.config import NodeConfig
from studio.node.service import Node

SAMPLE = {"temperature": 0.8, "seed": 3}  # the tiny model's greedy answer is only whitespace


@pytest.fixture
def node(served_studio: Any) -> Iterator[Node]:
    n = Node(
        served_studio, NodeConfig(api="127.0.0.1:0", require_payment=False), chain=False
    ).start()
    try:
        yield n
    finally:
        n.stop()


def _client(node: Node, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=node.url + "/v1", api_key=key, max_retries=0)


def test_models_completions_and_attribution(node: Node, served_studio: Any) -> None:
    c = _client(node)
    ids = [m.id for m in c.models.list().data]
    assert ids == ["notes-a", "notes-b"]
    raw = c.completions.with_raw_response.create(
        model="notes-a", prompt="The lighthouse keeper", max_tokens=12, extra_body=SAMPLE
    )
    rid = raw.headers["x-attribution-report-id"]
    comp = raw.parse()
    att = comp.model_extra["attribution"]
    assert att["report_id"] == rid and sum(w["bps"] for w in att["weights"]) == 10_000
    want = served_studio.models.generate(
        "notes-a", "The lighthouse keeper", max_new_tokens=12, chat=False, **SAMPLE
    )
    assert comp.choices[0].text == want
    full = httpx.get(f"{node.url}/v1/attribution/{rid}").json()
    rep = full["report"]
    assert rep["report_hash"] == att["report_hash"] == R.compute_hash(rep)
    assert rep["output"]["text"] == want and rep["model"]["id"] == "notes-a"
    assert httpx.get(f"{node.url}/v1/attribution/att_nope").status_code == 404
    # The other adapter on the same base, switched per request.
    chat = c.chat.completions.create(
        model="notes-b",
        messages=[{"role": "user", "content": "Bees cluster"}],
        max_tokens=10,
        extra_body=SAMPLE,
    )
    assert chat.choices[0].message.role == "assistant"
    assert chat.choices[0].message.content == served_studio.models.generate(
        "notes-b", "Bees cluster", max_new_tokens=10, **SAMPLE
    )
    assert chat.model_extra["attribution"]["method"] == "span"
    assert chat.choices[0].finish_reason in ("stop", "length")
    m = httpx.get(f"{node.url}/metrics").text
    assert 'studio_node_requests_total{endpoint="chat",status="200"} 1.0' in m
    assert httpx.get(f"{node.url}/health").json()["requests"]["served"] == 2


def test_streaming_chat_and_completions(node: Node, served_studio: Any) -> None:
    c = _client(node)
    with c.chat.completions.with_streaming_response.create(
        model="notes-a",
        messages=[{"role": "user", "content": "The lighthouse keeper"}],
        max_tokens=12,
        stream=True,
        extra_body=SAMPLE,
    ) as resp:
        rid = resp.headers["x-attribution-report-id"]
        chunks = list(resp.parse())
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == served_studio.models.generate(
        "notes-a", "The lighthouse keeper", max_new_tokens=12, **SAMPLE
    )
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.model_extra["attribution"]["report_id"] == rid
    stream = c.completions.create(
        model="notes-b", prompt="Bees", max_tokens=6, stream=True, extra_body=SAMPLE
    )
    parts = list(stream)
    assert "".join(p.choices[0].text for p in parts) == served_studio.models.generate(
        "notes-b", "Bees", max_new_tokens=6, chat=False, **SAMPLE
    )
    assert parts[-1].model_extra["attribution"]["weights"]
    # The raw wire format: data lines of JSON, then [DONE].
    with httpx.stream(
        "POST",
        f"{node.url}/v1/completions",
        json={"model": "notes-a", "prompt": "x", "max_tokens": 3, "stream": True, **SAMPLE},
    ) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]" and all(ln.startswith("data: ") for ln in lines)


def test_bad_requests_get_openai_errors(node: Node) -> None:
    c = _client(node)
    with pytest.raises(openai.NotFoundError) as ei:
        c.completions.create(model="nope", prompt="x", max_tokens=3)
    assert ei.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as ei:
        c.completions.create(model="notes-a", prompt="word " * 400, max_tokens=200)
    assert ei.value.code == "context_length_exceeded"
    for bad in (0, 10**6):
        with pytest.raises(openai.BadRequestError) as ei:
            c.completions.create(model="notes-a", prompt="x", max_tokens=bad)
        assert ei.value.param == "max_tokens"
    # Errors come before a stream starts: an HTTP error, not a broken stream.
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}], stream=True
        )
    r = httpx.post(
        f"{node.url}/v1/completions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(f"{node.url}/v1/completions", content=b"x" * (node.config.max_request_bytes + 1))
    assert r.status_code == 413
    r = httpx.post(f"{node.url}/v1/completions", json={"model": "notes-a", "prompt": 5})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    # Nothing was served or stored by any of these.
    assert node.counters["served"] == 0
    assert node.studio.store.one("SELECT COUNT(*) AS n FROM node_reports")["n"] == 0


def test_concurrency_limit_answers_429(served_studio: Any) -> None:
    cfg = NodeConfig(api="127.0.0.1:0", require_payment=False, max_concurrent=1)
    n = Node(served_studio, cfg, chain=False).start()
    gate = threading.Event()
    try:
        assert n.worker is not None
        busy = n.worker.submit(gate.wait)  # the model worker is busy
        while not busy.running():  # (until it is taken, it counts as queued below)
            gate.wait(0.01)
        first: dict[str, Any] = {}

        def call() -> None:
            first["r"] = httpx.post(
                f"{n.url}/v1/completions",
                json={"model": "notes-a", "prompt": "x", "max_tokens": 2, **SAMPLE},
                timeout=60,
            )

        t = threading.Thread(target=call)
        t.start()
        while n.worker.queued == 0 and t.is_alive():  # the first request waits for the worker
            gate.wait(0.01)
        r = httpx.post(
            f"{n.url}/v1/completions", json={"model": "notes-a", "prompt": "y"}, timeout=60
        )  # (httpx's default 5 s was seen to run out on a loaded machine)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
        gate.set()
        t.join()
        assert first["r"].status_code == 200
    finally:
        gate.set()
        n.stop()


def test_token_required_off_loopback_and_checked(
    served_studio: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="without a token"):
        Node(served_studio, NodeConfig(api="0.0.0.0:0", require_payment=False), chain=False).start()
    tok = tmp_path / "token"
    tok.write_text("s3cret-token\n")
    cfg = NodeConfig(api="127.0.0.1:0", require_payment=False, api_token_file=str(tok))
    n = Node(served_studio, cfg, chain=False).start()
    try:
        with pytest.raises(openai.AuthenticationError):
            _client(n, "wrong").models.list()
        r = httpx.get(f"{n.url}/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert [m.id for m in _client(n, "s3cret-token").models.list().data] == [
            "notes-a",
            "notes-b",
        ]
        assert httpx.get(f"{n.url}/health").status_code == 200
    finally:
        n.stop()


def test_a_slow_client_does_not_stall_others(node: Node) -> None:
    """One client sends half a body and stops; another opens a stream and never reads it. A
    third request is still answered (the event loop and the model worker never wait on them)."""
    import socket

    host, port = node.url.removeprefix("http://").rsplit(":", 1)
    trickle = socket.create_connection((host, int(port)))
    unread = socket.create_connection((host, int(port)))
    try:
        trickle.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n" + b'{"model": "notes-a", '
        )
        body = b'{"model": "notes-a", "prompt": "The keeper", "max_tokens": 32, "stream": true}'
        unread.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        r = _client(node).completions.create(
            model="notes-b", prompt="Bees cluster", max_tokens=4, **SAMPLE
        )
        assert r.choices[0].text is not None and r.model_extra["attribution"]["report_id"]
    finally:
        trickle.close()
        unread.close()
