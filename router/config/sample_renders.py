"""Every template of rules.yaml rendered for sample calls (DESIGN.md section 13): for each
packaged sample call and for a sparse call (the required fields only), as each rule
routing to the sink would deliver it (a grouped rule's digest holding the call alone).
A template that cannot render, or renders what its sink cannot send, is an error; a value
some call lacks, which the template prints (it renders empty), is a warning, one per
value. `check` shows both; `route --render`, the console's rules page and a reload's
answer show them too.

Which value a printed missing value was is read off the template's lookups
(`Template.reads`): the render only knows the name that was missing (`customer_tier`),
and the call says which path lacks it there (`variables.customer_tier`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from router.config.field_names import call_path
from router.config.schema import Config
from router.config.yaml_source import Position, SourceError
from router.core.call_fields import unknown_field
from router.core.samples import SAMPLE_NAMES, sample_call, sparse_call
from router.core.template_fields import FieldRead
from router.rules import CompiledRule, group_key
from sinks.base import DIGEST_NAMES, Digest, sample_request, window_time

SPARSE_CALL = "sparse"  # the name of the call with only the required fields


def digest_of_one(
    rule: CompiledRule, event: Mapping[str, Any], now: float | None = None
) -> Digest | None:
    """For a grouped rule, the digest `event` would open at `now`, holding it alone."""
    if rule.group is None:
        return None
    now = datetime.now(UTC).timestamp() if now is None else now
    return Digest(
        group_key=group_key(rule.group, event),
        window_start=window_time(now),
        window_end=window_time(now + rule.group.window),
        calls=[event],
    )


@dataclass
class Findings:
    """What rendering rules.yaml's templates for sample calls showed."""

    errors: list[SourceError] = field(default_factory=list)
    warnings: list[SourceError] = field(default_factory=list)


def sample_calls() -> list[tuple[str, dict[str, Any]]]:
    """The calls every template is tried with, by name: the packaged samples, and the
    sparse call (`SPARSE_CALL`)."""
    return [*((name, sample_call(name)) for name in SAMPLE_NAMES), (SPARSE_CALL, sparse_call())]


def check_findings(config: Config) -> list[tuple[SourceError, str]]:
    """Everything `check` says of a loaded rules.yaml, in file order, each problem with
    its severity (`error`, `warning`): the load's warnings, and what rendering the
    templates for the sample calls shows."""
    found = sample_findings(config)
    problems = [(error, "error") for error in found.errors]
    problems += [(warning, "warning") for warning in [*config.warnings, *found.warnings]]
    return sorted(problems, key=lambda item: (item[0].position, item[1], item[0].message))


def _called(name: str) -> str:
    if name == SPARSE_CALL:
        return "a sparse call (only the required fields)"
    return f"the sample call {name!r}"


def _shapes(config: Config, sink: str) -> list[tuple[str, CompiledRule | None]]:
    """The deliveries a sink gets: by its first ungrouped rule (or any rule, when none
    routes to it), and as each grouped rule's digest."""
    rules = [rule for rule in config.rules if sink in rule.to]
    ungrouped = [rule for rule in rules if rule.group is None]
    shapes: list[tuple[str, CompiledRule | None]] = []
    if ungrouped or not rules:
        shapes.append(("", ungrouped[0] if ungrouped else None))
    shapes.extend(
        (f"a digest of rule {rule.name!r} holding ", rule) for rule in rules if rule.group
    )
    return shapes


@dataclass
class _Missing:
    """One value a template prints that some deliveries lack: where, and which calls lack
    it (or, for a digest's own value, which rule sends single calls)."""

    sink: str
    setting: str
    path: str
    line: int  # of the template: the warnings of a template come in its order
    calls: list[str] = field(default_factory=list)
    single_call_rule: str | None = None


def sample_findings(config: Config) -> Findings:
    """Render every template for every sample call and the sparse call (see the module)."""
    findings = Findings()
    missing: dict[tuple[str, str, str], _Missing] = {}
    calls = sample_calls()
    for name, sink in config.sinks.items():
        failed: set[str] = set()  # settings that failed once: tried no more (a slow one)
        for shape, rule in _shapes(config, name):
            for label, call in calls:
                digest = digest_of_one(rule, call) if rule is not None else None
                rule_name = rule.name if rule is not None else "sample-rule"
                request = sample_request(call, rule=rule_name, digest=digest)
                context = sink.trial_context(request)
                for trial in sink.try_templates(request, skip=failed):
                    at = config.template_positions.get((name, trial.setting), Position(1, 1))
                    if trial.problem is not None:
                        failed.add(trial.setting)
                        message = (
                            f"sink {name!r}: {trial.setting}: {trial.problem}"
                            f" (rendered with {shape}{_called(label)})"
                        )
                        findings.errors.append(SourceError(config.path, at, message))
                        continue
                    reads = trial.template.reads
                    lines = {".".join(read.value_path): read.line for read in reversed(reads)}
                    for path in missing_paths(reads, trial.missing, context):
                        found = missing.setdefault(
                            (name, trial.setting, path),
                            _Missing(name, trial.setting, path, lines.get(path, 0)),
                        )
                        if digest is None and path.split(".")[0] in DIGEST_NAMES:
                            found.single_call_rule = rule_name
                        elif label not in found.calls:
                            found.calls.append(label)
    settings = list(dict.fromkeys((name, setting) for name, setting, _ in missing))
    ordered = sorted(missing.values(), key=lambda m: (settings.index((m.sink, m.setting)), m.line))
    for found in ordered:
        at = config.template_positions.get((found.sink, found.setting), Position(1, 1))
        findings.warnings.append(SourceError(config.path, at, _missing_message(found)))
    return findings


def _missing_message(found: _Missing) -> str:
    where = f"sink {found.sink!r}: {found.setting}: {found.path}"
    if found.single_call_rule is not None:
        return (
            f"{where} is given to a digest only (a grouped rule's delivery), and rule"
            f" {found.single_call_rule!r} sends single calls here: it renders empty there"
        )
    samples = [name for name in found.calls if name != SPARSE_CALL]
    which = [f"sample{'s' if len(samples) > 1 else ''} {', '.join(samples)}"] if samples else []
    if SPARSE_CALL in found.calls:
        which.append("a sparse call (only the required fields)")
    return (
        f"{where} is missing from {' and '.join(which)}: it renders empty there (null as a"
        " whole JSON value); give it a default (| default('…')) or test it ({% if %})"
    )


def missing_paths(
    reads: Sequence[FieldRead], names: Sequence[str], context: Mapping[str, Any]
) -> list[str]:
    """The paths, among the lookups `reads`, of the missing values a render printed (by
    their `names`, see `router.core.missing_values`): each lookup that `context` lacks
    a value for, at a step whose name was printed missing. A name no lookup explains (a
    loop variable's lookup, a slice of a null) is given as it is. Paths under a field
    the schema does not have are left out: `field_warnings` names those."""
    printed = set(names)
    paths: list[str] = []
    explained: set[str] = set()
    for read in reads:
        step = _first_missing(read.path, context)
        if step is None or read.path[step] not in printed:
            continue
        explained.add(read.path[step])
        path = call_path(read)
        if path is not None and unknown_field(path) is not None:
            continue
        text = ".".join(read.value_path)
        if text not in paths:
            paths.append(text)
    paths.extend(_unexplained(name) for name in names if name not in explained)
    return paths


def _unexplained(name: str) -> str:
    return f"a value sliced {name}" if name.startswith("[") else f"a value named {name!r}"


def _first_missing(path: Sequence[str], context: Mapping[str, Any]) -> int | None:
    """The index of the first step of `path` that `context` has no value for (a null
    field at the top is a value, printed empty: no missing one)."""
    if path[0] not in context:
        return 0
    node: Any = context[path[0]]
    for index, key in enumerate(path[1:], start=1):
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, str | bytes) and hasattr(node, key):
            return None  # a method of text (`status.lower()`)
        else:
            return index
    return None
