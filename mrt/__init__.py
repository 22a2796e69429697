"""MRT (RFC 6396 / RFC 8050) decoding into warehouse rows.

Public API::

    stream, encoding = open_decompressed(raw)
    stats = DecodeStats()
    for row in decode_rows(stream, project=..., collector=..., source_file=..., stats=stats):
        ...
    kind = mrt_kind(stats)   # "RIB", "UPDATES" or ""

Lower level (the converter's fast path): ``decode_records`` yields each record's rows as
a list and can hand TABLE_DUMP_V2 RIB records to a hook as raw bytes;
``open_decompressed_prefetch`` decompresses in a background thread.

Rows are dicts keyed exactly by ``schema.COLUMN_NAMES``; they share list values
and must be treated as read-only.
"""

from .compression import detect_encoding, open_decompressed, open_decompressed_prefetch
from .decoder import NotMRTError, decode_records, decode_rows
from .stats import DecodeStats, is_record_reason, mrt_kind

__all__ = [
    "DecodeStats",
    "NotMRTError",
    "decode_records",
    "decode_rows",
    "detect_encoding",
    "is_record_reason",
    "mrt_kind",
    "open_decompressed",
    "open_decompressed_prefetch",
]
