"""`listening_sockets` (router/web/connections.py) on real sockets: one per address the
host names, and nothing left open when the port is taken."""

from __future__ import annotations

import socket

import pytest

from router.web.connections import listening_sockets


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", ""])
def test_the_site_listens_on_every_address_the_host_names(host):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wanted = {
        info[4][:2]
        for info in socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    }
    listeners = listening_sockets(host, port, 8)
    try:
        assert {sock.getsockname()[:2] for sock in listeners} == wanted
        assert all(not sock.getblocking() for sock in listeners)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        for sock in listeners:
            sock.close()


def test_a_taken_port_closes_what_was_opened():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            listening_sockets("127.0.0.1", taken.getsockname()[1], 8)
