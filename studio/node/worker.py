"""The pieces a request passes through: the Job it becomes, the ApiError that refuses it, and the
one model worker thread every model call runs on."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any


def _crash_point(name: str) -> None:
    """Test hook for the exactly-once tests: STUDIO_NODE_CRASH_AT=name kills the process (kill -9)
    right here, as a power cut would."""
    import os

    if os.environ.get("STUDIO_NODE_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class ApiError(Exception):
    """A request refused with an OpenAI-style error body and an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        type: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.type, self.param = (
            status,
            message,
            code,
            type,
            param,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass
class Job:
    model: str
    prompt: str
    chat: bool
    max_tokens: int
    temperature: float = 0.0
    seed: int = 0
    inference_id: int | None = None
    report_id: str = ""

    def __post_init__(self) -> None:
        if not self.report_id:
            import secrets

            # Known before the first token, so a stream's X-Attribution-Report-Id header can name it.
            self.report_id = "att_" + secrets.token_hex(12)


class ModelWorker:
    """One thread runs every model call in order (torch work is serialised; the event loop never
    blocks on it). `submit(fn)` returns a Future."""

    def __init__(self) -> None:
        self.q: queue.Queue[tuple[Any, Future[Any]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="model-worker", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                fut.set_exception(e)

    def submit(self, fn: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        self.q.put((fn, fut))
        return fut

    @property
    def queued(self) -> int:
        return self.q.qsize()

    def close(self) -> None:
        self.q.put(None)
        self.thread.join(timeout=30)
