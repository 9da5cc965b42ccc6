"""What an unconfigured sink's deliveries wait for, worded for whoever can fix it
(DESIGN.md section 6): a setting whose value came from `${VAR}` gets its value with a
restart, since a reload reads rules.yaml again but not the environment; a setting
written empty in rules.yaml (or not written) with an edit and a reload. `check`, the
log at start and reload, and the console say it alike. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router.config.yaml_source import Path_

SettingVariables = Mapping[str, Mapping[str, tuple[str, ...]]]
"""Per sink, per top-level setting: the environment variables its value names."""


def sink_setting_variables(variables: Mapping[Path_, tuple[str, ...]]) -> SettingVariables:
    """The variables named under each sink's settings, from those named at each path of
    rules.yaml (`("sinks", "crm", "headers", "Authorization")` counts for `headers`)."""
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for path, names in variables.items():
        if len(path) >= 3 and path[0] == "sinks":
            sink, setting = str(path[1]), str(path[2])
            known = found.setdefault(sink, {}).get(setting, ())
            found[sink][setting] = tuple(dict.fromkeys((*known, *names)))
    return found


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def waiting_for(missing: Sequence[str], variables: Mapping[str, tuple[str, ...]]) -> str:
    """`its deliveries wait until …`: what gives the `missing` settings a value, given the
    environment variables each one's value names (`variables`, by setting)."""
    from_environment = list(dict.fromkeys(name for s in missing for name in variables.get(s, ())))
    written = [setting for setting in missing if not variables.get(setting)]
    edit = f"rules.yaml gives {_listed(written)} a value" if written else ""
    if not from_environment:
        return f"its deliveries wait until {edit} and is reloaded"
    verb = "is" if len(from_environment) == 1 else "are"
    settings = f"{_listed(from_environment)} {verb} set in the environment"
    return (
        f"its deliveries wait until {f'{edit} and ' if edit else ''}{settings}"
        " and the router restarted (a reload does not read the environment)"
    )
