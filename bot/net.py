"""Loopback ports for servers the bot (or a test) starts next."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on now, for a server started next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
