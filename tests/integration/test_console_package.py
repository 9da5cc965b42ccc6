"""The console's templates and static files, and the sample calls, ship in the wheel
(package data)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_console_template_and_static_file_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["router"]
    package = ROOT / "router"
    files = [
        path.relative_to(package).as_posix()
        for folder in ("web/ui/templates", "web/ui/static", "core/sample_calls")
        for path in (package / folder).rglob("*")
        if path.is_file()
    ]
    assert files
    for name in files:
        assert any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns), name
