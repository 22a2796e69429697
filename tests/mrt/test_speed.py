"""A coarse guard against speed regressions on the jinx RIB (503,590 rows).

The target is decode_rows < 5 s without decompression (about 2.5 s when written);
the bound here is loose because the test machine is shared.
"""

from __future__ import annotations

import bz2
import io
import time
from pathlib import Path

import pytest

from rvcloud.mrt import DecodeStats, decode_rows

pytestmark = pytest.mark.slow


def test_jinx_rib_decode_speed(shared_mrt: Path) -> None:
    data = bz2.decompress(
        (shared_mrt / "libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2").read_bytes()
    )
    stats = DecodeStats()
    t0 = time.perf_counter()
    n = 0
    for _ in decode_rows(io.BytesIO(data), project="p", collector="c", source_file="f", stats=stats):
        n += 1
    elapsed = time.perf_counter() - t0
    print(f"jinx RIB: {n} rows in {elapsed:.2f} s ({n / elapsed:,.0f} rows/s)")
    assert n == 503_590
    assert elapsed < 12.0
