"""The process pool of an ingest (core.ingest_plan): each file's chunks planned by workers
started from a warmed-up fork server (at a lower priority than the writer), handed to the one
writer in file and chunk order as each is done, at most about ingest_plan.WINDOW_BYTES of files
ahead of it. While the workers start, or when they fall behind, the writer plans a chunk no
worker has started yet itself. A worker that dies is a StudioError that says what to do."""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from typing import Any

from studio.core import ingest_plan as ip
from studio.core.cancel import CancelToken, check
from studio.core.config import IngestConfig
from studio.core.errors import StudioError
from studio.core.ingest_plan import PackStore, Prepared


def pooled(
    prepared: Sequence[Prepared],
    cfg: IngestConfig,
    n_workers: int,
    cancel: CancelToken | None,
    store: PackStore,
    written: list[str],
) -> Iterator[ip.FileParts | StudioError]:
    from collections import deque
    from concurrent.futures.process import BrokenProcessPool

    pool = _start_pool(n_workers)
    # per file, in order: the error that refused it, or its head, size, chunk futures and chunks
    ahead: deque[StudioError | tuple[dict[str, Any], int, list[Any], list[Any]]] = deque()
    todo = iter(prepared)
    in_flight = [0]
    current: list[Any] = []
    current_parts: list[Any] = []

    up: list[bool] = []  # (non-empty once a worker has planned a chunk)

    def workers_up(f: Any) -> None:
        if not up and not f.cancelled():
            up.append(True)

    def steal() -> bool:
        """Plan here, rather than wait idle, one chunk no worker has started: the last one
        submitted (the workers take them in order). This process plans while the workers start
        up, and whenever it has written all it has."""
        if not STEAL:
            return False
        for entry in reversed(ahead):
            if not isinstance(entry, StudioError) and _steal_one(entry[2], entry[3], cfg, store):
                return True
        return _steal_one(current, current_parts, cfg, store)

    def top_up() -> None:
        """Read and submit files until the window is full (at least one file ahead)."""
        while not ahead or in_flight[0] < ip.WINDOW_BYTES:
            item = next(todo, None)
            if item is None:
                return
            if isinstance(item, StudioError):
                ahead.append(item)
                continue
            check(cancel)
            try:
                head, parts = ip._read(item, cfg)
            except StudioError as e:
                ahead.append(e)
                continue
            try:
                futures = [pool.submit(ip._attempt, c, cfg, store) for c in parts]
                for f in futures:
                    f.add_done_callback(workers_up)
            except BrokenProcessPool as e:  # a worker died planning an earlier file
                raise _worker_died(head["name"], pool) from e
            ahead.append((head, head["size"], futures, parts))
            in_flight[0] += head["size"]

    at = [0]  # the current file's next chunk

    def next_done() -> bool:
        return at[0] < len(current) and current[at[0]] is not None and current[at[0]].done()

    def parts(
        head: dict[str, Any], size: int, futures: list[Any], chunks: list[Any]
    ) -> Iterator[dict[str, Any] | StudioError]:
        """One file's chunk plans, in order, whatever happens (`futures` and `chunks` are the
        lists steal() sees as current)."""
        for i in range(len(futures)):
            at[0] = i + 1
            check(cancel)
            while may_steal(futures[i], bool(up)) and steal():
                check(cancel)
            r = ip._noted(_result(futures[i], head["name"], pool), written)
            futures[i] = chunks[i] = None  # (its plan is the caller's now)
            if i == len(futures) - 1:  # the next files' chunks join the queue
                in_flight[0] -= size
                top_up()
            yield ip._account(r)

    try:
        top_up()
        while ahead:
            entry = ahead.popleft()
            if isinstance(entry, StudioError):
                top_up()
                yield entry
                continue
            head, size, current, current_parts = entry

            fp = ip.FileParts(
                head, len(current), parts(head, size, current, current_parts), next_done
            )
            yield fp
            fp.drain()  # (what the caller did not take: its packs are noted all the same)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # also when the caller stops early
        # the blobs of plans never handed out (they ran, or were running, when it stopped)
        rest = [f for f in current if f is not None]
        rest += [f for e in ahead if not isinstance(e, StudioError) for f in e[2]]
        for f in rest:
            if f.done() and not f.cancelled() and f.exception() is None:
                ip._noted(f.result(), written)


STEAL = True  # (tests turn it off to leave every chunk to the workers)
STOLEN = [0]  # chunks the writer planned itself while it would have waited (bench/ingest.py)


def may_steal(waited_for: Any, workers_up: bool) -> bool:
    """Whether the writer, waiting for a chunk's plan, should plan another chunk itself: only
    while the workers start up or when they are behind (the chunk waited for is still queued).
    Once it runs, waiting for it costs less than planning another: the writer is the pipeline's
    slowest stage, and every chunk it plans delays the writes after it."""
    return not waited_for.done() and (not waited_for.running() or not workers_up)


def _steal_one(futures: list[Any], parts: list[Any], cfg: IngestConfig, store: PackStore) -> bool:
    from concurrent.futures import Future

    for j in range(len(futures) - 1, -1, -1):
        f = futures[j]
        if f is not None and f.cancel():  # (only one no worker has taken yet)
            done: Future[Any] = Future()
            done.set_result(ip._attempt(parts[j], cfg, store))
            futures[j] = done
            STOLEN[0] += 1
            return True
    return False


def _result(future: Any, name: str, pool: Any) -> dict[str, Any] | StudioError:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()  # type: ignore[no-any-return]
    except BrokenProcessPool as e:
        raise _worker_died(name, pool) from e
    except MemoryError as e:
        raise _worker_died(name, pool, " (out of memory)") from e


def _worker_died(name: str, pool: Any, how: str = "") -> StudioError:
    """What to say when a pool worker is gone (the kernel's out-of-memory killer, a kill): the
    caller's transaction rolls back and its pending packs are discarded, so re-running is safe."""
    if not how:
        procs = list((getattr(pool, "_processes", None) or {}).values())
        # The pool's manager thread is reaping the workers as we get here: while it reads a dead
        # worker's status, that worker's exitcode reads as None. It joins every worker and
        # stops, so after it the codes are all there.
        manager = getattr(pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=10)
        codes = sorted({p.exitcode for p in procs} - {None, 0})
        if -signal.SIGKILL in codes:
            how = " (killed: SIGKILL, most often the system running out of memory)"
        elif codes:
            how = f" (exit status {', '.join(map(str, codes))})"
    return StudioError(
        f"{name}: an ingest worker process stopped abruptly{how} while planning this file;"
        " nothing was added.",
        hint="Re-running the add is safe. If it happens again: fewer workers (ingest.workers = 1"
        " in config.json plans in this process, one chunk at a time), smaller files (split"
        " them), or more free memory (close other programs).",
    )


def _start_pool(n_workers: int) -> Any:
    """Worker processes started fresh (forkserver where there is one, never a plain fork of a
    process that may run GUI or server threads); the fork server imports and warms up the
    planning code once (core.ingest_warm), so each worker starts ready."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["studio.core.ingest_warm"])
    return ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_setup)


WORKER_NICE = 10
# glibc's malloc in a fresh process maps and unmaps every block over 128 KiB and trims the heap
# as soon as 128 KiB are free; a chunk's plan allocates and frees such blocks by the hundred
# (numpy arrays, the chunk's bytes), so each is page-faulted in again: planning in a worker cost
# 12-18% more CPU than in the long-running writer, whose thresholds have risen. Fixed thresholds
# (a worker's working set is a few chunks: bounded) remove the difference (bench/ingest.py).
MALLOC_MMAP_THRESHOLD = 16 << 20
MALLOC_TRIM_THRESHOLD = 64 << 20


def _worker_setup() -> None:
    _lower_priority()
    _steady_malloc()


def _lower_priority() -> None:
    """Workers yield the CPU to this process, the one writer: it is the pipeline's critical path
    (the workers are up to a window ahead of it), and on a machine with as many workers as cores
    an equal share would leave it a fraction of a core."""
    import os

    if hasattr(os, "nice") and WORKER_NICE:
        try:
            os.nice(WORKER_NICE)
        except OSError:
            pass


def _steady_malloc() -> bool:
    """Set glibc malloc's thresholds in this process; False where there is no glibc."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # (musl and others have no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # (malloc.h)
    ok = mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD) == 1
    return mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD) == 1 and ok
