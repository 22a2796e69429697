"""Fixtures of the CLI tests: a fake gateway served in-process on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from rvcloud.v1 import gateway_pb2_grpc
from tests.cli.fake_gateway import FakeGateway, Gateway


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    fake = FakeGateway()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    gateway_pb2_grpc.add_GatewayServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield Gateway(fake, f"127.0.0.1:{port}")
    finally:
        server.stop(grace=None)
