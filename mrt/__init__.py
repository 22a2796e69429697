"""MRT (RFC 6396 / RFC 8050) decoding into warehouse rows.

Public API::

    stream, encoding = open_decompressed(raw)
    stats = DecodeStats()
    for row in decode_rows(stream, project=..., collector=..., source_file=..., stats=stats):
        ...
    kind = mrt_kind(stats)   # "RIB", "UPDATES" or ""

Rows are dicts keyed exactly by ``schema.COLUMN_NAMES``; they share list values
and must be treated as read-only.
"""

from .compression import detect_encoding, open_decompressed
from .decoder import NotMRTError, decode_rows
from .stats import DecodeStats, is_record_reason, mrt_kind

__all__ = [
    "DecodeStats",
    "NotMRTError",
    "decode_rows",
    "detect_encoding",
    "is_record_reason",
    "mrt_kind",
    "open_decompressed",
]
