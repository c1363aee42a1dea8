"""Loopback ports for tests. Servers bind port 0 themselves (TestServer, `gateway serve --port 0`); the one thing a
test needs a number for is a port where connections are refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses every connection while the block runs: bound but never listening, so no other
    process can take it meanwhile (a port closed after binding could be reused at once under `-n 2`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
