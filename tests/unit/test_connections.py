"""The default connection cap (router/web/connections.py) leaves file descriptors for the rest."""

from __future__ import annotations

import resource

import pytest

from router.web.connections import ConnectionLimits, default_max_connections


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
