"""Compression detection and streaming decompression of MRT files.

Only the magic bytes decide the encoding, never the file name. The decompressed
stream is read lazily; a truncated compressed stream surfaces as ``EOFError`` (or
``OSError``) from ``read``, which the decoder catches (see ``DecodeStats.truncated_at``).
"""

from __future__ import annotations

import bz2
import gzip
import io
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
