"""The sample calls ship with the router (package data) and are the ones in `samples/`."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import pytest

from router.core.events import parse_event
from router.core.samples import SAMPLE_NAMES, SAMPLES_DIRECTORY, sample_call, sample_event

ROOT = Path(__file__).resolve().parents[2]


def test_every_sample_of_the_repository_is_packaged_unchanged() -> None:
    at_root = {path.stem for path in (ROOT / "samples").glob("*.json")}
    assert set(SAMPLE_NAMES) == at_root
    for name in SAMPLE_NAMES:
        expected = json.loads((ROOT / "samples" / f"{name}.json").read_text(encoding="utf-8"))
        assert sample_call(name) == expected, name
        parse_event(sample_call(name))


def test_the_packaged_samples_are_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["router"]
    for name in SAMPLE_NAMES:
        path = f"core/{SAMPLES_DIRECTORY}/{name}.json"
        assert any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns), path


def test_the_default_sample_is_the_completed_inbound_call_and_a_fresh_copy() -> None:
    event = sample_event()
    assert (event["status"], event["direction"]) == ("COMPLETED", "INBOUND")
    event["status"] = "changed"
    assert sample_event()["status"] == "COMPLETED"


def test_an_unknown_sample_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="no sample call 'nope'"):
        sample_call("nope")
