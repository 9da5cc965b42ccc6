"""rules.yaml: its schema, and loading it into a validated, compiled `Config`.

`load_config` reports every problem of a file in one go, each located at the
YAML node it is about (`FILE:LINE:COL: message`): YAML syntax, unset variables,
unknown keys, wrong types, bad durations and rates, templates that do not
compile, bad operators or regexes in `when:`, duplicate rule names, rules
routing to sinks that are not defined, bad `time_intervals:` (ranges, times, zones)
and rules naming intervals that are not defined. Secret settings stay `SecretStr`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router.config.field_names import field_warnings
from router.config.unconfigured import SettingVariables, sink_setting_variables, waiting_for
from router.config.yaml_source import (
    Path_,
    Position,
    SourceError,
    YamlDocument,
    load_yaml_with_positions,
    named_variables,
)
from router.core.retry import RetryPolicy, RetrySettings
from router.core.units import Duration
from router.rules import (
    CompiledRule,
    Condition,
    ConditionErrors,
    EscalateSpec,
    GroupSpec,
    IntervalErrors,
    TimeInterval,
    compile_time_intervals,
    compile_when,
    lint_when,
)
from sinks.base import SinkConfig
from sinks.registry import SINK_TYPE_NAMES, AnySinkConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Defaults(_Strict):
    retry: RetrySettings = Field(default_factory=RetrySettings)


class GroupSettings(_Strict):
    by: list[str] = Field(min_length=1)
    window: Duration
    max: int | None = Field(default=None, ge=1)

    @field_validator("by", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("by")
    @classmethod
    def _dotted_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path or any(not segment.strip() for segment in path.split(".")):
                raise ValueError(
                    f"group by {path!r} is not a field path: use names joined by dots, "
                    "like sipTrunkId or variables.tier"
                )
        return paths

    @field_validator("window")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("window must be longer than 0s")
        return value


class EscalateSettings(_Strict):
    """`escalate: {after, to}`: nobody acknowledged a call's alert of this rule within
    `after` (DESIGN.md section 16): a new delivery to each sink of `to`."""

    after: Duration
    to: list[str] = Field(min_length=1)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("after")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("after must be longer than 0s")
        return value


class RuleSettings(_Strict):
    name: str = Field(min_length=1)
    when: dict[str, Any] | None = None
    to: list[str] = Field(min_length=1)
    stop: bool = False
    group: GroupSettings | None = None
    active_during: list[str] = Field(default_factory=list)
    muted_during: list[str] = Field(default_factory=list)
    escalate: EscalateSettings | None = None

    @field_validator("to", "active_during", "muted_during", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class RulesFile(_Strict):
    version: Literal[1]
    defaults: Defaults = Field(default_factory=Defaults)
    sinks: dict[str, AnySinkConfig] = Field(default_factory=dict)
    rules: list[RuleSettings] = Field(default_factory=list)
    time_intervals: Any = None  # checked and compiled by router.rules.time_intervals


@dataclass
class Config:
    """A loaded rules.yaml: validated settings, compiled rules, and warnings."""

    path: str
    settings: RulesFile
    rules: tuple[CompiledRule, ...]  # a tuple: the matcher's index is kept per rule list
    warnings: list[SourceError] = field(default_factory=list)
    sink_positions: dict[str, Position] = field(default_factory=dict)
    # Where each sink's templates are written, by (sink, setting as `templates()` names it).
    template_positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    time_intervals: dict[str, TimeInterval] = field(default_factory=dict)
    # What it was compiled from: the text and the environment variables the text names
    # (`router.engine.parse_workers` compiles the same rules again in its worker processes).
    source: str = field(default="", repr=False)
    variables: dict[str, str] = field(default_factory=dict, repr=False)
    # The environment variables each sink setting's value names.
    setting_variables: SettingVariables = field(default_factory=dict, repr=False)

    @property
    def sinks(self) -> Mapping[str, SinkConfig]:
        return self.settings.sinks

    def unconfigured_sinks(self) -> dict[str, list[str]]:
        """Sinks whose required settings came out empty, with the names of those settings."""
        return {
            name: missing
            for name, sink in self.sinks.items()
            if (missing := sink.missing_settings())
        }

    def waiting_for(self, sink: str) -> str:
        """What an unconfigured sink's deliveries wait for: a restart for settings read
        from the environment, an edit and a reload for those written in rules.yaml."""
        missing = self.sinks[sink].missing_settings() if sink in self.sinks else []
        return waiting_for(missing, self.setting_variables.get(sink, {}))

    def retry_policy(self, sink: str) -> RetryPolicy:
        sink_settings = self.sinks[sink].retry if sink in self.sinks else None
        return RetryPolicy.resolve(self.settings.defaults.retry, sink_settings)


_START = Position(1, 1)


class ConfigError(Exception):
    """A rules.yaml that cannot be used; `errors` holds every problem, located."""

    def __init__(self, errors: list[SourceError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


def _strip_tags(document: YamlDocument, loc: tuple[Any, ...]) -> Path_:
    """A pydantic error location as a document path (drops discriminator tags and
    the `function-after[...]` style entries pydantic adds)."""
    path: list[str | int] = []
    node = document.data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            path.append(part)
            node = node[part]
        elif (isinstance(node, dict) and isinstance(part, str) and node.get("type") == part) or (
            isinstance(part, str) and ("[" in part or part in SINK_TYPE_NAMES)
        ):
            continue
        else:
            path.append(part)
            node = None
    return tuple(path)


def _describe(item: Mapping[str, Any], path: Path_) -> str:
    kind = item["type"]
    where = ".".join(str(p) for p in path)
    if kind == "extra_forbidden":
        return f"unknown key {path[-1]!r}" + (
            f" in {'.'.join(map(str, path[:-1]))}" if len(path) > 1 else ""
        )
    if kind == "missing":
        return f"{where}: required setting is missing"
    if kind == "union_tag_invalid":
        tag = item.get("input", {}).get("type") if isinstance(item.get("input"), dict) else None
        return f"{where}: unknown sink type {tag!r}; expected one of: {', '.join(SINK_TYPE_NAMES)}"
    if kind == "union_tag_not_found":
        return f"{where}: a sink needs a type (one of: {', '.join(SINK_TYPE_NAMES)})"
    if kind == "literal_error" and path == ("version",):
        return "version: unsupported version; expected 1"
    message = str(item["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return f"{where}: {message}" if where else message


def _rule_label(document: YamlDocument, path: Path_) -> str | None:
    """`rule 'name'` for a path inside `rules:`, to say which rule a problem is in."""
    if len(path) < 2 or path[0] != "rules" or not isinstance(path[1], int):
        return None
    rules = document.data.get("rules") if isinstance(document.data, dict) else None
    rule = rules[path[1]] if isinstance(rules, list) and path[1] < len(rules) else None
    name = rule.get("name") if isinstance(rule, dict) else None
    return f"rule {name!r}" if isinstance(name, str) else f"rule #{path[1] + 1}"


def _validation_errors(document: YamlDocument, error: ValidationError) -> list[SourceError]:
    errors = []
    for item in error.errors(include_url=False):
        path = _strip_tags(document, item["loc"])
        key = item["type"] in ("extra_forbidden", "missing")
        anchor = path[:-1] if item["type"] == "missing" else path
        message = _describe(item, path)
        label = _rule_label(document, path)
        if label is not None:
            message = f"{label}: {message.removeprefix('.'.join(map(str, path[:2])) + '.')}"
        errors.append(document.error(anchor, message, key=key))
    return errors


def _check_rules(
    document: YamlDocument,
) -> tuple[dict[int, Condition], list[SourceError], list[SourceError]]:
    """Checks that work on the raw rules even when the schema failed elsewhere, so one
    run reports every problem: duplicate names, undefined sinks, and `when:` blocks
    (compiled here, once, and read against the call's schema: `lint_when`). Returns the
    conditions, the errors and the warnings."""
    data = document.data if isinstance(document.data, dict) else {}
    raw_rules: list[Any] = data["rules"] if isinstance(data.get("rules"), list) else []
    raw_sinks = data.get("sinks") if isinstance(data.get("sinks"), dict) else None
    raw_intervals = data.get("time_intervals")
    interval_names = list(raw_intervals) if isinstance(raw_intervals, dict) else []
    conditions: dict[int, Condition] = {}
    errors: list[SourceError] = []
    warnings: list[SourceError] = []
    first_use: dict[str, int] = {}
    errors.extend(_check_on_dead(document, raw_sinks))
    for index, rule in enumerate(raw_rules):
        if not isinstance(rule, dict):
            continue
        name = rule.get("name")
        label = f"rule {name!r}" if isinstance(name, str) else f"rule #{index + 1}"
        if isinstance(name, str):
            if name in first_use:
                line = document.position_of(("rules", first_use[name], "name")).line
                errors.append(
                    document.error(
                        ("rules", index, "name"),
                        f"duplicate rule name {name!r} (first used at line {line})",
                    )
                )
            first_use.setdefault(name, index)
        targets = rule.get("to")
        targets = [targets] if isinstance(targets, str) else targets
        if isinstance(targets, list) and raw_sinks is not None:
            for position, sink in enumerate(targets):
                if isinstance(sink, str) and sink not in raw_sinks:
                    known = ", ".join(map(str, raw_sinks)) or "none defined"
                    errors.append(
                        document.error(
                            ("rules", index, "to", position),
                            f"{label} routes to undefined sink {sink!r} (sinks: {known})",
                        )
                    )
        errors.extend(_escalation_errors(document, index, label, rule, targets, raw_sinks))
        for key in ("active_during", "muted_during"):
            names = rule.get(key)
            names = [names] if isinstance(names, str) else names
            for position, interval in enumerate(names if isinstance(names, list) else []):
                if isinstance(interval, str) and interval not in interval_names:
                    known = ", ".join(map(str, interval_names)) or "none defined"
                    errors.append(
                        document.error(
                            ("rules", index, key, position),
                            f"{label}: {key} names undefined time interval {interval!r} "
                            f"(time_intervals: {known})",
                        )
                    )
        when = rule.get("when")
        if when is None or isinstance(when, dict):
            try:
                conditions[index] = compile_when(when)
            except ConditionErrors as exc:
                for problem in exc.errors:
                    errors.append(
                        document.error(
                            ("rules", index, "when", *problem.path),
                            f"{label}: {problem.message}",
                            key=problem.at_key,
                        )
                    )
            for finding in lint_when(when):
                found = document.error(
                    ("rules", index, "when", *finding.path),
                    f"{label}: {finding.message}",
                    key=finding.at_key,
                )
                (errors if finding.error else warnings).append(found)
    return conditions, errors, warnings


def _escalation_errors(
    document: YamlDocument,
    index: int,
    label: str,
    rule: dict[str, Any],
    targets: Any,
    raw_sinks: dict[str, Any] | None,
) -> list[SourceError]:
    """`escalate.to` names sinks that exist, none of them twice, and none the rule already
    sends to: escalating to where the alert went is a cycle (the same channel, unread, is
    asked again). Escalated deliveries never escalate again, so no longer chain exists."""
    escalate = rule.get("escalate")
    if not isinstance(escalate, dict):
        return []
    to = escalate.get("to")
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list):
        return []
    routed = set(targets) if isinstance(targets, list) else set()
    errors = []
    seen: set[str] = set()
    for position, sink in enumerate(to):
        if not isinstance(sink, str):
            continue
        where = ("rules", index, "escalate", "to", position)
        if raw_sinks is not None and sink not in raw_sinks:
            known = ", ".join(map(str, raw_sinks)) or "none defined"
            message = f"{label} escalates to undefined sink {sink!r} (sinks: {known})"
            errors.append(document.error(where, message))
        elif sink in routed:
            message = (
                f"{label}: escalation cycle: it escalates to {sink!r}, which it already"
                " routes to (escalate to a sink outside the rule's `to`)"
            )
            errors.append(document.error(where, message))
        elif sink in seen:
            errors.append(document.error(where, f"{label}: escalates to {sink!r} twice"))
        seen.add(sink)
    return errors


def _check_on_dead(document: YamlDocument, raw_sinks: dict[Any, Any] | None) -> list[SourceError]:
    """Each `on_dead` entry names a sink of the file (DESIGN.md section 16)."""
    errors: list[SourceError] = []
    sinks = raw_sinks or {}
    for name, settings in sinks.items():
        if not isinstance(settings, dict):
            continue
        targets = settings.get("on_dead")
        targets = [targets] if isinstance(targets, str) else targets
        if not isinstance(targets, list):
            continue
        for position, sink in enumerate(targets):
            if isinstance(sink, str) and sink not in sinks:
                known = ", ".join(map(str, sinks))
                at: tuple[str | int, ...] = ("sinks", name, "on_dead", position)
                if isinstance(settings.get("on_dead"), str):
                    at = ("sinks", name, "on_dead")
                errors.append(
                    document.error(
                        at,
                        f"sink {name!r}: on_dead names undefined sink {sink!r} (sinks: {known})",
                    )
                )
    return errors


def _check_time_intervals(
    document: YamlDocument,
) -> tuple[dict[str, TimeInterval], list[SourceError]]:
    """Compile `time_intervals:`, every problem located at its node."""
    data = document.data if isinstance(document.data, dict) else {}
    path = ("time_intervals",)
    try:
        raw = document.as_written(path, data.get("time_intervals"))
        return compile_time_intervals(raw), []
    except IntervalErrors as exc:
        errors = [
            document.error((*path, *problem.path), problem.message, key=problem.at_key)
            for problem in exc.errors
        ]
        return {}, errors


def _compiled_rules(
    settings: RulesFile, conditions: dict[int, Condition]
) -> tuple[CompiledRule, ...]:
    rules = []
    for index, rule in enumerate(settings.rules):
        group = None
        if rule.group is not None:
            group = GroupSpec(tuple(rule.group.by), rule.group.window, rule.group.max)
        targets = tuple(dict.fromkeys(rule.to))
        escalate = None
        if rule.escalate is not None:
            escalate = EscalateSpec(rule.escalate.after, tuple(dict.fromkeys(rule.escalate.to)))
        rules.append(
            CompiledRule(
                rule.name,
                conditions[index],
                targets,
                rule.stop,
                group,
                tuple(rule.active_during),
                tuple(rule.muted_during),
                escalate,
            )
        )
    return tuple(rules)


def _warnings(
    document: YamlDocument, settings: RulesFile, variables: SettingVariables
) -> list[SourceError]:
    warnings = []
    for name, sink in settings.sinks.items():
        missing = sink.missing_settings()
        if missing:
            warnings.append(
                document.error(
                    ("sinks", name),
                    f"sink {name!r} is not configured ({', '.join(missing)} is empty): "
                    + waiting_for(missing, variables.get(name, {})),
                    key=True,
                )
            )
        for path, problem in sink.setting_warnings():
            where = ".".join(str(part) for part in ("sinks", name, *path))
            warnings.append(document.error(("sinks", name, *path), f"{where}: {problem}"))
    return warnings


def _setting_path(setting: str) -> Path_:
    """A template's setting name as a document path: `steps.0.body` is the body of the
    first step (a list index), `headers.X` a header."""
    head, _, rest = setting.partition(".")
    if head == "steps" and rest:
        index, _, under = rest.partition(".")
        if index.isdigit():
            return ("steps", int(index), *under.split(".", 1))
    return tuple(setting.split("."))


def _setting_errors(document: YamlDocument, settings: RulesFile) -> list[SourceError]:
    """What each sink's settings get wrong together (`SinkConfig.setting_errors`)."""
    errors = []
    for name, sink in settings.sinks.items():
        for path, problem in sink.setting_errors():
            where = ".".join(str(part) for part in ("sinks", name, *path))
            errors.append(document.error(("sinks", name, *path), f"{where}: {problem}"))
    return errors


def parse_config(text: str, file: str, environ: Mapping[str, str] | None = None) -> Config:
    """Validate and compile rules.yaml text; raise `ConfigError` with every problem."""
    document = load_yaml_with_positions(text, file, environ)
    errors = list(document.errors)
    if document.data is None:
        raise ConfigError(errors)
    if not isinstance(document.data, dict):
        message = "rules.yaml must be a mapping with version, sinks and rules"
        raise ConfigError([*errors, document.error((), message)])
    settings: RulesFile | None = None
    try:
        settings = RulesFile.model_validate(document.data)
    except ValidationError as exc:
        errors.extend(_validation_errors(document, exc))
    conditions, rule_errors, rule_warnings = _check_rules(document)
    errors.extend(rule_errors)
    intervals, interval_errors = _check_time_intervals(document)
    errors.extend(interval_errors)
    if settings is not None:
        errors.extend(_setting_errors(document, settings))
    if errors or settings is None:
        raise ConfigError(sorted(set(errors), key=lambda e: (e.position, e.message)))
    positions = {name: document.position_of(("sinks", name), key=True) for name in settings.sinks}
    template_positions = {
        (name, setting): document.position_of(("sinks", name, *_setting_path(setting)))
        for name, sink in settings.sinks.items()
        for setting in sink.templates()
    }
    rules = _compiled_rules(settings, conditions)
    variables = named_variables(text, os.environ if environ is None else environ)
    setting_variables = sink_setting_variables(document.variables)
    return Config(
        file,
        settings,
        rules,
        [
            *rule_warnings,
            *_warnings(document, settings, setting_variables),
            *field_warnings(file, settings.sinks, template_positions),
        ],
        positions,
        template_positions,
        intervals,
        source=text,
        variables=variables,
        setting_variables=setting_variables,
    )


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a rules.yaml file; raise `ConfigError` with every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([SourceError(file, _START, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([SourceError(file, _START, f"cannot read: {exc}")]) from None
    return parse_config(text, file, environ)
