"""The console's times: each a `<time datetime>` in UTC with UTC text (the console's
script shows it in the viewer's zone), a call's own ISO times alike when they carry a
zone; and the form field that says an action was confirmed."""

from __future__ import annotations

from markupsafe import Markup, escape

from router.web.ui.pages import confirmed, iso_when, when, when_text

MOMENT = 1_795_186_931.0  # 2026-11-20 15:02:11 UTC


def test_a_moment_is_a_time_element_in_utc() -> None:
    shown = when(MOMENT)
    assert isinstance(shown, Markup)
    assert shown == '<time datetime="2026-11-20T15:02:11Z">2026-11-20 15:02:11 UTC</time>'
    assert when(None) == "-"
    assert when_text(MOMENT) == "2026-11-20 15:02:11 UTC", "plain text for attributes"


def test_a_calls_iso_time_with_a_zone_is_shown_in_utc() -> None:
    for given in ("2026-11-20T15:02:11Z", "2026-11-20T16:02:11+01:00", "2026-11-20T15:02:11.5Z"):
        assert iso_when(given) == when(MOMENT), given


def test_a_calls_time_without_a_zone_or_not_a_time_shows_as_sent_and_escaped() -> None:
    assert iso_when("2026-11-20T15:02:11") == "2026-11-20T15:02:11", "no zone: no guess"
    odd = '<img src=x onerror="alert(1)">'
    shown = iso_when(odd)
    assert not isinstance(shown, Markup) and str(escape(shown)).startswith("&lt;img")
    assert iso_when(None) == "-" and iso_when("") == "-"
    for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"):
        assert iso_when(edge) == edge, "past the calendar in UTC: shown as sent"


def test_only_confirm_yes_confirms() -> None:
    assert confirmed({"confirm": "yes"})
    for form in ({}, {"confirm": ""}, {"confirm": "1"}, {"confirm": "YES "}, {"confirm": "no"}):
        assert not confirmed(form), form
