"""Packaging: dependency floors above known-vulnerable releases, a hashed lock file that
covers every runtime dependency, and an image built from that lock on a pinned Python."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]

# The first release of each without the fault the Hardening issue found in older ones.
FLOORS = {
    # zip bomb on auto-decompressed bodies (GHSA-6mq8-rvhq-8wgg, fixed 3.13.3), unread
    # compressed bodies decompressed at once during cleanup (GHSA-g3cq-j2xw-wf74, 3.14.1),
    # out-of-bounds read in the C response parser (GHSA-cq5v-8q36-5273, 3.14.3)
    "aiohttp": "3.14.3",
    # loads: deep nesting overflowed the stack (CVE-2024-27454, 3.9.15); dumps: the
    # same for nested objects (GHSA-hx9q-6w63-j58v, 3.11.5)
    "orjson": "3.11.5",
    # sandbox escapes through str.format (GHSA-q2x7-8rv6-6q7h, 3.1.5) and |attr
    # (GHSA-cpwx-vrp4-4pq7, 3.1.6)
    "jinja2": "3.1.6",
}

FOUND_IN = {"aiohttp": "3.9.5", "orjson": "3.9.10", "jinja2": "3.1.4"}  # versions the issue names


def runtime_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, sha256 hashes) from requirements.lock."""
    text = (ROOT / "requirements.lock").read_text()
    entries: dict[str, tuple[Version, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if match is None:
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        entries[canonicalize_name(match[1])] = (Version(match[2]), hashes)
    return entries


@pytest.mark.parametrize(("name", "floor"), FLOORS.items())
def test_pyproject_refuses_the_vulnerable_releases(name: str, floor: str) -> None:
    requirement = runtime_requirements()[name]
    *head, last = Version(floor).release
    just_below = ".".join(map(str, (*head, last - 1)))
    for vulnerable in (FOUND_IN[name], just_below):
        assert not requirement.specifier.contains(vulnerable), (requirement, vulnerable)
    assert requirement.specifier.contains(floor), requirement


def test_the_regex_engine_is_a_runtime_dependency() -> None:
    assert "google-re2" in runtime_requirements()


def test_the_lock_pins_every_runtime_dependency_with_hashes_within_its_range() -> None:
    lock = locked()
    for name, requirement in runtime_requirements().items():
        assert name in lock, f"{name} is not in requirements.lock"
        version, hashes = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), (name, version)
        assert hashes, f"{name} has no hash in requirements.lock"
    for name, (_, hashes) in lock.items():
        assert hashes, f"{name} (a dependency's dependency) has no hash"


def test_the_image_installs_the_lock_on_a_pinned_python() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    bases = [line for line in lines if line.startswith("FROM ")]
    assert bases == ["FROM python:3.11.14-slim AS wheel", "FROM python:3.11.14-slim"], bases
    installs = [line for line in lines if line.startswith("RUN pip ")]
    assert installs == [
        "RUN pip install --require-hashes --no-deps -r build-requirements.lock",
        "RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .",
        "RUN pip install --require-hashes --no-deps -r requirements.lock",
        "RUN pip install --no-deps /wheels/*.whl \\",
    ], "every package the image installs or builds with is locked with its hashes"
    assert "COPY requirements.lock ./" in lines
    assert "COPY build-requirements.lock ./" in lines


def test_the_build_backend_is_locked_within_the_projects_range() -> None:
    """The image builds its wheel with build-requirements.lock's setuptools, never an
    unpinned one fetched at build time (a rebuild would change silently)."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    (required,) = [Requirement(text) for text in build["requires"]]
    text = (ROOT / "build-requirements.lock").read_text()
    pinned = re.search(r"^setuptools==(\S+) \\$", text, re.M)
    assert pinned is not None and required.name == "setuptools"
    assert required.specifier.contains(pinned.group(1)), (required, pinned.group(1))
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", text)) >= 1
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0", "an SPDX expression, not a table"
