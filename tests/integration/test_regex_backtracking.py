"""A pattern that backtracks for minutes in Python's `re` evaluates over a mebibyte on RE2.
It runs in a child process so that a regression fails at a timeout instead of hanging
the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PATHOLOGICAL = textwrap.dedent(
    """
    from router.rules.matching import compile_when

    condition = compile_when({"summary": {"regex": "(?i)voicemail.*full"}})
    for size in (80 * 1024, 1024 * 1024):
        summary = ("voicemail " * (size // 10 + 1))[:size]
        assert not condition({"summary": summary})
        assert condition({"summary": summary + " full"})
    print("evaluated")
    """
)


@pytest.mark.slow
def test_a_pattern_that_backtracks_in_python_evaluates_over_a_mebibyte() -> None:
    # With Python's re this takes minutes (quadratic backtracking); the timeout is only a
    # guard so the test fails instead of hanging, not a measure of speed.
    result = subprocess.run(
        [sys.executable, "-c", PATHOLOGICAL],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "evaluated"
