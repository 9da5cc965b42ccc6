"""The SIGTERM drain fits inside Docker's default 10 s stop timeout (issue 32 item 3)."""

from router.engine.delivery import EngineSettings, drain_seconds
from router.web.connections import ConnectionLimits

DOCKER_DEFAULT_STOP_TIMEOUT = 10.0


def test_default_drain_ends_before_docker_kills() -> None:
    grace = EngineSettings().shutdown_grace
    assert grace < DOCKER_DEFAULT_STOP_TIMEOUT
    # The requests in progress are answered within the same bound, not on top of it.
    assert ConnectionLimits().shutdown_grace <= grace


def test_sends_get_what_the_requests_left() -> None:
    assert drain_seconds(8.0, stop_began=100.0, now=105.0) == 3.0
    assert drain_seconds(8.0, stop_began=100.0, now=112.0) == 0.0
    assert drain_seconds(8.0, stop_began=None, now=112.0) == 8.0
