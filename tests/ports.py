"""Free TCP ports on 127.0.0.1 for the servers the tests start (Ray heads, moto, Serve)."""
from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports.

    The sockets stay bound until all are chosen: asking for one port at a time lets the kernel
    hand the same port out twice, and ``ray start`` then refuses to start ("metrics_export is
    trying to use a port number ... used by other components"), which failed a CI run."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    return ports


def free_port() -> int:
    """One free port."""
    return free_ports(1)[0]
