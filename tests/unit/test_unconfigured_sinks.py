"""What an unconfigured sink's deliveries wait for (router/config/unconfigured.py): a
setting read from the environment needs a restart, since a reload reads rules.yaml
again but not the environment; one written empty in rules.yaml needs an edit and a
reload (DESIGN.md sections 3 and 6)."""

from __future__ import annotations

from router.config import parse_config
from router.config.unconfigured import waiting_for

RESTART = "and the router restarted (a reload does not read the environment)"


def warnings_of(sinks: str, environ: dict[str, str] | None = None) -> list[str]:
    text = f"version: 1\nsinks:\n{sinks}\nrules: []\n"
    return [warning.message for warning in parse_config(text, "r.yaml", environ or {}).warnings]


def test_a_setting_from_the_environment_needs_a_restart() -> None:
    [warning] = warnings_of("  s: {type: slack, webhook_url: '${SLACK_WEBHOOK_URL:-}'}")
    assert warning == (
        "sink 's' is not configured (webhook_url is empty): its deliveries wait until"
        f" SLACK_WEBHOOK_URL is set in the environment {RESTART}"
    )
    assert "reload sets" not in warning


def test_a_setting_written_empty_or_not_written_needs_an_edit_and_a_reload() -> None:
    [empty] = warnings_of("  crm: {type: http, url: ''}")
    assert empty.endswith("its deliveries wait until rules.yaml gives url a value and is reloaded")
    [absent] = warnings_of("  s: {type: slack}")
    assert absent.endswith("until rules.yaml gives webhook_url a value and is reloaded")


def test_both_kinds_at_once_need_the_edit_and_a_restart() -> None:
    sink = (
        "  mail: {type: email, host: '', from: a@example.com,"
        " to: ['${SUPPORT_TO:-}'], username: '${SMTP_USER:-u}', password: '${SMTP_PW:-}'}"
    )
    [warning] = warnings_of(sink)
    assert warning.startswith("sink 'mail' is not configured (host, to, password is empty)")
    assert warning.endswith(
        "until rules.yaml gives host a value and SUPPORT_TO and SMTP_PW are set in the"
        f" environment {RESTART}"
    )


def test_a_set_variable_leaves_nothing_to_wait_for() -> None:
    assert warnings_of("  s: {type: slack, webhook_url: '${HOOK}'}", {"HOOK": "https://x"}) == []


def test_the_config_says_it_per_sink() -> None:
    config = parse_config(
        "version: 1\nsinks:\n  s: {type: slack, webhook_url: '${HOOK:-}'}\n"
        "  t: {type: teams, webhook_url: ''}\nrules: []\n",
        "r.yaml",
        {},
    )
    assert config.waiting_for("s").endswith(f"HOOK is set in the environment {RESTART}")
    assert config.waiting_for("t").endswith("and is reloaded")


def test_the_wording_of_several_settings() -> None:
    assert waiting_for(["a", "b"], {}) == (
        "its deliveries wait until rules.yaml gives a and b a value and is reloaded"
    )
    assert waiting_for(["a"], {"a": ("X", "Y")}).startswith(
        "its deliveries wait until X and Y are set in the environment"
    )
