"""Type stub of the optional C decoder (backends/warehouse/_avrocols.c)."""

class Buffer:
    """Memory of one decoded Arrow buffer (read-only buffer protocol; ``pa.py_buffer`` wraps it)."""

    def __len__(self) -> int: ...

class DecodeError(ValueError):
    block: int
    offset: int
    column: str | None
    reason: str

# (null_count, validity, values, data, data2, list_items) of one column; see decode.__doc__.
ColumnParts = tuple[int, Buffer | None, Buffer, Buffer | None, Buffer | None, int]

def decode(
    blocks: list[bytes], counts: list[int], spec: bytes, names: tuple[str, ...], /
) -> list[ColumnParts]: ...
