"""Type stub of the optional C accelerator (converter_worker/_ribfast.c)."""

from collections.abc import Callable, Iterable
from typing import Any

def configure(plausible_keys: Iterable[int], max_record_len: int, /) -> None: ...
def rib_run(
    ctx: Any,
    buf: bytes,
    pos: int,
    base: int,
    idx: int,
    sub: int,
    eof: bool,
    v4: bool,
    afisafi: bytes,
    cache: dict[bytes, bytes],
    cache_limit: int,
    miss: Callable[[dict[bytes, bytes], bytes, bool], bytes | None],
    peer_bytes: list[bytes],
    slow: Callable[[Any, bytes, int, int, int, int, int, int], int],
    get_writer: Callable[[], Any],
    block_rows: int,
    /,
) -> tuple[int, int, int, int, int, int]: ...
def prefix_text(v4: bool, plen: int, raw: bytes, /) -> str: ...
def encode_rib_attrs(raw: bytes, v4: bool, /) -> bytes | None: ...
def rib_frame(buf: bytes, pos: int, sub: int, eof: bool, /) -> tuple[int, int, int]: ...
