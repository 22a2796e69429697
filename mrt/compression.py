"""Compression detection and streaming decompression of MRT files.

Only the magic bytes decide the encoding, never the file name. The decompressed
stream is read lazily; a truncated compressed stream surfaces as ``EOFError`` (or
``OSError``) from ``read``, which the decoder catches (see ``DecodeStats.truncated_at``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import queue
import threading
from typing import BinaryIO, Final, cast

_MAGIC_BZIP2: Final = b"BZh"
_MAGIC_GZIP: Final = b"\x1f\x8b"


def detect_encoding(head: bytes) -> str:
    """``"bzip2"``, ``"gzip"`` or ``"none"`` from the first bytes of a file."""
    if head.startswith(_MAGIC_BZIP2):
        return "bzip2"
    if head.startswith(_MAGIC_GZIP):
        return "gzip"
    return "none"


def open_decompressed(raw: BinaryIO) -> tuple[BinaryIO, str]:
    """Wrap ``raw`` in a streaming decompressor chosen from its magic bytes.

    Returns ``(stream, encoding)``. ``raw`` need not be seekable: the peeked bytes
    are put back in front through a buffered reader.
    """
    peekable: io.BufferedReader
    if isinstance(raw, io.BufferedReader):
        peekable = raw
    else:
        peekable = io.BufferedReader(cast(io.RawIOBase, _RawAdapter(raw)))
    head = peekable.peek(3)[:3]
    enc = detect_encoding(head)
    if enc == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(peekable, "rb")), enc
    if enc == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=peekable, mode="rb")), enc
    return cast(BinaryIO, peekable), enc


class _RawAdapter(io.RawIOBase):
    """Minimal RawIOBase over any object with ``read`` so BufferedReader can peek it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        n = len(data)
        b[:n] = data
        return n


class PrefetchReader(io.RawIOBase):
    """Reads ``stream`` ahead in a background thread (decompression releases the GIL).

    The decoder then overlaps bzip2/gzip decompression with decoding on a second core.
    Data and errors arrive in the order the wrapped stream produced them: chunks come
    from ``read1`` (one decompressor step each), so a truncated stream delivers every
    byte it would have delivered unthreaded and then raises the same exception.
    ``close`` stops the thread.
    """

    _CHUNK: Final = 1 << 20
    _DEPTH: Final = 8  # chunks read ahead (bounds memory to ~8 MiB)

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._src = stream
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(self._DEPTH)
        self._stop = threading.Event()
        self._pending = b""
        self._done = False
        self._thread = threading.Thread(target=self._run, name="mrt-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        read1 = getattr(self._src, "read1", None)
        read = read1 if callable(read1) else self._src.read
        try:
            while True:
                chunk = read(self._CHUNK)
                if not chunk:
                    break
                if not self._put(chunk):
                    return
        except BaseException as e:  # handed to the reader, raised there in order
            self._put(e)
            return
        self._put(None)

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        if self._pending:
            data = self._pending
        elif self._done:
            return b""
        else:
            item = self._q.get()
            if item is None:
                self._done = True
                return b""
            if isinstance(item, BaseException):
                self._done = True
                raise item
            data = item
        if 0 <= n < len(data):
            self._pending = data[n:]
            return data[:n]
        self._pending = b""
        return data

    def read(self, n: int | None = -1) -> bytes:
        if n is not None and n >= 0:
            return self.read1(n)
        chunks = []
        while chunk := self.read1():
            chunks.append(chunk)
        return b"".join(chunks)

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read1(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stop.set()
        super().close()


def open_decompressed_prefetch(raw: BinaryIO) -> tuple[BinaryIO, str]:
    """``open_decompressed`` with decompression in a background thread (see ``PrefetchReader``).

    Close the returned stream when done (it stops the thread). Uncompressed input is
    returned as is.
    """
    stream, enc = open_decompressed(raw)
    if enc == "none":
        return stream, enc
    return cast(BinaryIO, PrefetchReader(stream)), enc
