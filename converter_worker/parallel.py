"""RIB conversion split across processes by record ranges, output order kept.

The decoder frames the stream in the parent (cheap: headers only) and hands each run of
clean TABLE_DUMP_V2 RIB records (up to one 4 MiB read block, see
``decoder.BatchRibHook``) to :class:`ParallelRibHook`, which sends it to a pool of
worker processes. A worker encodes the run with its own :class:`RibFastPath` and
deflates the Avro blocks itself; the parent appends the blocks to the ``ribs`` file in
submission order and replays the worker's skip/error events into the stats in order,
so rows, blocks' content order and stats are those of the sequential conversion.

Per-worker attribute caches differ from the single sequential cache in one visible
way: ``note:attribute_problem`` is counted once per cache miss of a blob with problems.
Workers report such blobs with their notes, and the parent keeps the notes of a blob
only the first time it sees it, as the sequential cache would (exact as long as a file
has fewer than ``RIB_CACHE_LIMIT`` distinct blobs, after which the sequential cache
starts over and counts a blob again).

Small inputs never start a pool: runs are encoded in-process until one run is at least
``PARALLEL_MIN_BYTES`` (a 4 MiB read block is full only in files larger than that).
With the C accelerator (``avro_fast._ribfast``) the default is no split at all
(``default_workers``); runs are then framed and encoded by the accelerator in-process.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
from collections import deque
from collections.abc import Callable
from typing import Final

from rvcloud.mrt.context import RIB_CACHE_LIMIT, Context
from rvcloud.mrt.decoder import _rib_frame
from rvcloud.mrt.stats import DecodeStats

from .avro_fast import AvroContainerWriter, RibFastPath, _ribfast, accel_enabled, deflate

PARALLEL_MIN_BYTES = 1 << 20  # not Final: tests lower it
# Runs queued per worker: enough to keep workers busy while the parent decompresses.
_INFLIGHT_PER_WORKER: Final = 2

# Worker events, replayed in order by the parent: skip(reason, n), error(message),
# attribute_notes(raw blob, messages).
_Event = tuple[str, object, object]
_Result = tuple[list[tuple[int, bytes]], int, int, int, list[_Event]]


def default_workers() -> int:
    """Worker processes for the split: ``$RVCLOUD_CONVERT_WORKERS``; else 1 (no split) with
    the C accelerator, one per available CPU without it.

    With the accelerator a RIB record costs less than its bzip2 decompression, so one
    process (decompression in its prefetch thread) is bound by decompression and faster
    than the split on two cores, which adds the pool's start, the transfer of the runs
    and attribute sets encoded once per worker (bench/RESULTS.md, step 6).
    """
    env = os.environ.get("RVCLOUD_CONVERT_WORKERS")
    if env:
        return max(1, int(env))
    if accel_enabled():
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _EventStats(DecodeStats):
    """Worker-side stats: remembers skip/error calls in order for the parent to replay."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[_Event] = []

    def skip(self, reason: str, n: int = 1) -> None:
        self.events.append(("skip", reason, n))

    def error(self, msg: str) -> None:
        self.events.append(("error", msg, None))


class _BlockCollector:
    """The ``AvroContainerWriter`` interface RibFastPath uses, deflating into a list."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.rows = 0
        self.blocks: list[tuple[int, bytes]] = []

    def flush_block(self) -> None:
        if self.rows:
            self.blocks.append((self.rows, deflate(b"".join(self.parts))))
            self.parts = []
            self.rows = 0


class _WorkerRib(RibFastPath):
    """Reports attribute problems as events tagged with the blob (deduplicated by the parent).

    Its cache bound only trades CPU for memory (the parent counts notes once per blob
    whatever the workers' caches do): half the decoder's, so two workers hold about
    what one sequential cache would.
    """

    cache_limit = RIB_CACHE_LIMIT // 2

    def attribute_notes(self, ctx: Context, raw: bytes, messages: list[str]) -> None:
        assert isinstance(ctx.stats, _EventStats)
        ctx.stats.events.append(("attribute_notes", raw, messages))


# Per worker process: (context, fast path, block collector), made by the first task.
_STATE: dict[tuple[str, str, str], tuple[Context, _WorkerRib, _BlockCollector]] = {}


def _work(
    task: tuple[bytes, int, int, int, int, list[tuple[str, int]], tuple[str, str, str], bool],
) -> _Result:
    """Encode one run of ``n`` RIB records (worker process; ``accel`` as in the parent)."""
    data, off, idx, sub, n, peers, ident, accel = task
    state = _STATE.get(ident)
    if state is None:
        _STATE.clear()
        ctx = Context(*ident, _EventStats())
        collector = _BlockCollector()
        state = _STATE[ident] = (ctx, _WorkerRib(ctx, lambda: collector), collector)
    ctx, hook, collector = state
    stats = ctx.stats
    assert isinstance(stats, _EventStats)
    stats.events = []
    if ctx.peers != peers:
        ctx.peers = peers
    _pos, _idx, done, with_rows, nrows, _ts = hook.run(ctx, data, 0, off, idx, sub, True, accel)
    # The parent framed exactly these records; anything else would be a framing bug.
    assert done == n, (done, n)
    collector.flush_block()
    blocks, collector.blocks = collector.blocks, []
    return blocks, done, with_rows, nrows, stats.events


class ParallelRibHook(RibFastPath):
    """``BatchRibHook`` for ``decode_records``: runs of RIB records encoded in worker processes.

    Records the decoder hands over one at a time (``__call__``, around damage) and runs
    of small files are encoded here, in order with the workers' output.
    """

    def __init__(
        self, ctx: Context, writer: Callable[[], AvroContainerWriter], workers: int | None = None
    ) -> None:
        super().__init__(ctx, writer)
        self._container = writer
        self._ctx = ctx
        self._workers = workers or default_workers()
        self._pool: multiprocessing.pool.Pool | None = None
        self._inflight: deque[multiprocessing.pool.AsyncResult[_Result]] = deque()
        self._noted: set[bytes] = set()
        t = ctx.template
        self._ident = (t["project"], t["collector"], t["source_file"])

    def batch(self, buf: bytes, pos: int, end: int, off: int, idx: int, sub: int, n: int) -> None:
        ctx = self._ctx
        if ctx.peers is None or (
            self._pool is None and (end - pos < PARALLEL_MIN_BYTES or self._workers < 2)
        ):
            # Small input (or records that only count as missing their peer table):
            # encode here and account at once; nothing is in flight (the decoder syncs
            # before the peer table changes).
            self.sync()
            stats = ctx.stats
            run = buf[pos:end]
            _p, _i, done, with_rows, nrows, _t = self.run(ctx, run, 0, off, idx, sub, True, accel_enabled())
            assert done == n, (done, n)
            stats.records_with_rows += with_rows
            stats.rows_by_type["RIB"] += nrows
            return
        if self._pool is None:
            # Not plain fork: the converter worker has threads (lease renewal, prefetch,
            # deflate) and a child forked while one of them holds a lock can hang. The fork
            # server is a clean process with this module preloaded, started once per process.
            mp = multiprocessing.get_context("forkserver")
            mp.set_forkserver_preload([__name__])
            self._pool = mp.Pool(self._workers)
        task = (buf[pos:end], off, idx, sub, n, ctx.peers, self._ident, accel_enabled())
        self._inflight.append(self._pool.apply_async(_work, (task,)))
        while len(self._inflight) > self._workers * _INFLIGHT_PER_WORKER:
            self._consume()

    def frame(self, buf: bytes, pos: int, sub: int, eof: bool) -> tuple[int, int, int]:
        """``decoder._rib_frame``, by the accelerator when it is on."""
        if _ribfast is not None and accel_enabled():
            res: tuple[int, int, int] = _ribfast.rib_frame(buf, pos, sub, eof)
            return res
        return _rib_frame(buf, pos, sub, eof)

    def _consume(self) -> None:
        blocks, _done, with_rows, nrows, events = self._inflight.popleft().get()
        stats = self._ctx.stats
        stats.records_with_rows += with_rows
        stats.rows_by_type["RIB"] += nrows
        for kind, a, b in events:
            if kind == "skip":
                stats.skip(a, b)  # type: ignore[arg-type]
            elif kind == "error":
                stats.error(a)  # type: ignore[arg-type]
            elif a not in self._noted:  # attribute_notes: once per blob, as one cache would
                self._noted.add(a)  # type: ignore[arg-type]
                super().attribute_notes(self._ctx, a, b)  # type: ignore[arg-type]
        if blocks:
            w = self._container()
            self._writer = w
            w.add_blocks(blocks)

    def attribute_notes(self, ctx: Context, raw: bytes, messages: list[str]) -> None:
        # Blobs decoded here count against the same once-per-blob record as the workers'.
        if raw not in self._noted:
            self._noted.add(raw)
            super().attribute_notes(ctx, raw, messages)

    def sync(self) -> None:
        while self._inflight:
            self._consume()

    def close(self) -> None:
        """Stop the workers (after ``sync``, or to abandon the conversion)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
