"""Every rules.yaml example in the documentation loads as `revring-router` loads
rules.yaml (a sink page's options shown alone load in a sink of that
type), and every curl example targets an endpoint the app routes."""

from __future__ import annotations

import atexit
import functools
import os
import re
import shlex
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_exceptions import HTTPMethodNotAllowed, HTTPNotFound

from router.config.schema import parse_config
from router.core.samples import sample_event
from router.web.app import ServiceSettings, build_app
from tests.docs import DOCS, blocks, pages
from tests.sheets_fake import new_private_key, service_account_key

TOP_LEVEL = re.compile(r"^(version|rules|sinks):", re.MULTILINE)
SHELLS = ("sh", "bash", "console", "shell")


def _where(path: Path, index: int) -> str:
    return f"{path.relative_to(DOCS)}#{index}"


def rules_examples() -> list[tuple[str, str]]:
    return [
        (_where(path, index), block)
        for path in pages()
        for index, block in enumerate(blocks(path.read_text(), "yaml"))
        if TOP_LEVEL.search(block)
    ]


def curl_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in pages():
        text = path.read_text()
        for language in SHELLS:
            for index, block in enumerate(blocks(text, language)):
                joined = re.sub(r"\\\n\s*", " ", block)
                for line in joined.splitlines():
                    line = line.strip().removeprefix("$ ")
                    if line.startswith("curl "):
                        found.append((_where(path, index), shlex.split(line, comments=True)))
    return found


SINK_PAGES = {
    "sinks/email.md": {"type": "email", "host": "smtp.example.com",
                       "from": "router@example.com", "to": ["ops@example.com"]},
    "sinks/slack.md": {"type": "slack", "webhook_url": "https://hooks.example.com/x"},
    "sinks/teams.md": {"type": "teams", "webhook_url": "https://teams.example.com/x"},
}  # fmt: skip


def sink_fragments() -> list[tuple[str, str, str]]:
    """(where, page, block) of each example that shows some options of one sink (indented
    as they sit under a sink's name) on a sink's page."""
    return [
        (_where(DOCS / name, index), name, block)
        for name in SINK_PAGES
        for index, block in enumerate(blocks((DOCS / name).read_text(), "yaml"))
        if block.startswith("    ") and not TOP_LEVEL.search(block)
    ]


def dummy_environment(text: str) -> dict[str, str]:
    def value(name: str) -> str:
        if name.endswith("_URL"):
            return "https://example.com/hook"
        if name.endswith("_CREDENTIALS"):  # a key file `check` reads
            return service_account_key_file()
        return f"value-of-{name.lower()}"

    return {name: value(name) for name in re.findall(r"\$\{(\w+)", text)}


@functools.cache
def service_account_key_file() -> str:
    """A service account's JSON key made for these tests (removed at exit)."""
    handle, path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    atexit.register(os.unlink, path)
    service_account_key(Path(path), new_private_key(), "https://oauth2.googleapis.com/token")
    return path


def as_rules_yaml(block: str) -> str:
    """The example as a whole file: `version: 1` when it leaves it out, and a log sink for
    each sink its rules name when it shows rules alone."""
    text = block if re.search(r"^version:", block, re.MULTILINE) else "version: 1\n" + block
    if not re.search(r"^sinks:", block, re.MULTILINE):
        named = set()
        for rule in (yaml.safe_load(block) or {}).get("rules") or []:
            targets = rule.get("to", [])
            named.update([targets] if isinstance(targets, str) else targets)
        text += "sinks:\n" + "".join(f"  {name}: {{type: log}}\n" for name in sorted(named))
    return text


def test_the_docs_have_rules_examples_and_curl_commands() -> None:
    assert len(rules_examples()) >= 15
    assert len(curl_commands()) >= 4
    assert len(sink_fragments()) >= 5


@pytest.mark.parametrize(("where", "block"), [pytest.param(*x, id=x[0]) for x in rules_examples()])
def test_every_rules_yaml_example_loads(where: str, block: str) -> None:
    text = as_rules_yaml(block)
    config = parse_config(text, where, dummy_environment(text))
    assert config.sinks or config.rules


@pytest.mark.parametrize(
    ("where", "name", "block"), [pytest.param(*x, id=x[0]) for x in sink_fragments()]
)
def test_every_sink_options_example_loads_in_a_sink_of_its_page(
    where: str, name: str, block: str
) -> None:
    options = SINK_PAGES[name] | yaml.safe_load(block)
    text = yaml.safe_dump({"version": 1, "sinks": {"example": options}}, sort_keys=False)
    config = parse_config(text, where, dummy_environment(text))
    assert config.sinks["example"].sample_problems(sample_event()) == []


def request_of(arguments: list[str]) -> tuple[str, str]:
    """(method, path) of a curl command line."""
    [url] = [argument for argument in arguments if argument.startswith("http")]
    method = "GET"
    if any(flag in arguments for flag in ("-d", "--data", "--data-binary", "--json")):
        method = "POST"
    if "-X" in arguments:
        method = arguments[arguments.index("-X") + 1]
    return method, urlsplit(url).path


@pytest.fixture(scope="module")
def app_router():  # type: ignore[no-untyped-def]
    return build_app(ServiceSettings(store_url="memory://docs", admin_token="token")).router


@pytest.mark.parametrize(
    ("where", "arguments"), [pytest.param(*x, id=f"{x[0]}:{x[1][-1]}") for x in curl_commands()]
)
async def test_every_curl_example_targets_a_routed_endpoint(
    where: str, arguments: list[str], app_router
) -> None:  # type: ignore[no-untyped-def]
    method, path = request_of(arguments)
    match = await app_router.resolve(make_mocked_request(method, path))
    assert not isinstance(match.http_exception, (HTTPNotFound, HTTPMethodNotAllowed)), (
        f"{where}: {method} {path} is not routed"
    )
