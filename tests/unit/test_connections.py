"""The default connection cap (router/web/connections.py) leaves file descriptors for the rest."""

from __future__ import annotations

import resource
import socket

import pytest

from router.web.connections import ConnectionLimits, default_max_connections, listening_sockets


@pytest.mark.parametrize(
    ("soft_limit", "cap"),
    [(1_048_576, 1000), (resource.RLIM_INFINITY, 1000), (1024, 512), (128, 64), (1, 1)],
)
def test_the_default_cap_is_1000_or_half_the_file_limit(monkeypatch, soft_limit, cap):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft_limit, soft_limit))
    assert default_max_connections() == cap
    assert ConnectionLimits().max_connections == cap


def test_the_idle_timeout_is_aiohttps_keepalive_timeout():
    limits = ConnectionLimits(idle_timeout=7.0)
    assert limits.handler_kwargs()["keepalive_timeout"] == 7.0


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
