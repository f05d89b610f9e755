"""Reading a screening rules file: YAML in, a validated ``RuleSet`` out, or a ``ConfigError`` naming file and key.

Every key is checked: unknown keys (a typo such as ``requires:``), unknown practices, proposal
fields and enum values, duplicate rule ids and sources that are not declared in ``sources`` are
refused, so a rule can never silently fail to fire.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:  # doctest: +ELLIPSIS
...     bad = Path(d) / "rules.yaml"
...     _ = bad.write_text("version: '9'\\neffective: 2026-01-18\\ntitle: t\\nsources: {}\\n")
...     read_rules(bad)
Traceback (most recent call last):
...
steppe.core.errors.ConfigError: ...rules.yaml: purpose_scan: missing
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from steppe.governance.proposal import Practice, ProposalSpec
from steppe.governance.rules import (
    ComputeRule,
    Condition,
    FieldRule,
    Outcome,
    ProhibitedRule,
    RuleSet,
    term_pattern,
)
from steppe.governance.yamlfile import YamlReader, load_yaml

DEFAULT_RULES_FILE = "rules-v1.yaml"


def unwrap_annotation(annotation: Any) -> tuple[Any, bool]:
    """(inner type, is_list) of a field annotation, without Optional and Annotated."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        elif origin is list:
            annotation, is_list = typing.get_args(annotation)[0], True
        else:
            return annotation, is_list


def _field_type(path: str) -> tuple[Any, bool]:
    """The type at a dotted proposal path; KeyError with a message when it does not exist."""
    model: type[BaseModel] = ProposalSpec
    parts = path.split(".")
    inner: Any = None
    is_list = False
    for i, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            raise KeyError(f"unknown proposal field {'.'.join(parts[: i + 1])!r}")
        inner, is_list = unwrap_annotation(info.annotation)
        if i < len(parts) - 1:
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                raise KeyError(f"proposal field {part!r} has no sub-fields")
            model = inner
    return inner, is_list


def _condition(r: YamlReader, path: str, spec: Any, key: str) -> Condition:
    try:
        kind, is_list = _field_type(path)
    except KeyError as exc:
        raise r.fail(key, str(exc.args[0])) from None
    if isinstance(spec, dict):
        r.mapping(spec, key)
        if len(spec) != 1 or next(iter(spec)) not in ("in", "not_in", "contains"):
            raise r.fail(key, "an operator mapping needs exactly one of: in, not_in, contains")
        op, values = next(iter(spec.items()))
        if not isinstance(values, list) or not values:
            raise r.fail(f"{key}.{op}", "must be a non-empty list")
        if (op == "contains") != is_list:
            raise r.fail(f"{key}.{op}", "'contains' is for list fields, 'in'/'not_in' for single values")
    else:
        if is_list:
            raise r.fail(key, "a list field needs {contains: [...]}")
        op, values = "equals", [spec]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        values = [r.choice(v, key, kind) for v in values]
    elif kind is bool and not all(isinstance(v, bool) for v in values):
        raise r.fail(key, "must be true or false")
    return Condition(path, op, values[0] if op == "equals" else tuple(values))


def read_rules(path: str | Path | None = None) -> RuleSet:
    """Load a rules file; ``None`` reads the packaged default."""
    source, raw = load_yaml(path, DEFAULT_RULES_FILE)
    r = YamlReader(source)
    top = r.mapping(raw, "", {"version", "effective", "title", "sources", "purpose_scan", "prohibited", "compute",
                             "rules"})
    version = str(r.get(top, "version", "", (str, int)))
    effective = r.get(top, "effective", "", (date, str))
    if isinstance(effective, str):
        try:
            effective = date.fromisoformat(effective)
        except ValueError:
            raise r.fail("effective", f"must be a date (YYYY-MM-DD), got {effective!r}") from None
    sources = r.mapping(r.get(top, "sources", "", dict), "sources")
    for k in sources:
        r.get(sources, k, "sources", str)
    scan = r.mapping(r.get(top, "purpose_scan", "", dict), "purpose_scan", {"outcome"})
    scan_outcome = r.choice(r.get(scan, "outcome", "purpose_scan", str), "purpose_scan.outcome", Outcome)
    ids: set[str] = set()

    def common(d: dict[str, Any], where: str) -> tuple[str, str, str, str]:
        rid = r.get(d, "id", where, str)
        if rid in ids:
            raise r.fail(f"{where}.id", f"duplicate rule id {rid!r}")
        ids.add(rid)
        src = r.get(d, "source", where, str)
        if src not in sources:
            raise r.fail(f"{where}.source", f"unknown source {src!r}; declared: {', '.join(sorted(sources))}")
        return rid, src, r.get(d, "cite", where, str), r.get(d, "reason", where, str)

    prohibited = []
    for i, item in enumerate(r.get(top, "prohibited", "", list, [])):
        where = f"prohibited[{i}]"
        d = r.mapping(item, where, {"id", "practice", "scope", "source", "cite", "reason", "terms"})
        rid, src, cite, reason = common(d, where)
        practice = r.choice(r.get(d, "practice", where, str), f"{where}.practice", Practice)
        scope = r.get(d, "scope", where, str, "all")
        if scope not in ("all", "eu"):
            raise r.fail(f"{where}.scope", f"must be 'all' or 'eu', got {scope!r}")
        terms = r.str_list(d, "terms", where, [])
        pats = tuple(term_pattern(t) for t in terms)
        prohibited.append(ProhibitedRule(rid, practice, scope, src, cite, reason, tuple(terms), pats))
    compute = []
    for i, item in enumerate(r.get(top, "compute", "", list, [])):
        where = f"compute[{i}]"
        d = r.mapping(item, where, {"id", "at_least_flop", "effect", "systemic_risk", "source", "cite", "reason"})
        rid, src, cite, reason = common(d, where)
        flop = r.get(d, "at_least_flop", where, float)
        if flop <= 0:
            raise r.fail(f"{where}.at_least_flop", f"must be > 0, got {flop}")
        effect = r.choice(r.get(d, "effect", where, str), f"{where}.effect", Outcome)
        systemic = r.get(d, "systemic_risk", where, bool, False)
        compute.append(ComputeRule(rid, flop, effect, systemic, src, cite, reason))
    field_rules = []
    for i, item in enumerate(r.get(top, "rules", "", list, [])):
        where = f"rules[{i}]"
        d = r.mapping(item, where, {"id", "when", "require", "effect", "source", "cite", "reason"})
        rid, src, cite, reason = common(d, where)
        when = r.mapping(r.get(d, "when", where, dict), f"{where}.when")
        conds = tuple(_condition(r, p, v, f"{where}.when.{p}") for p, v in when.items())
        require = r.get(d, "require", where, list, [])
        for j, p in enumerate(require):
            try:
                _field_type(str(p))
            except KeyError as exc:
                raise r.fail(f"{where}.require[{j}]", str(exc.args[0])) from None
        effect = r.choice(r.get(d, "effect", where, str), f"{where}.effect", Outcome)
        field_rules.append(FieldRule(rid, conds, tuple(str(p) for p in require), effect, src, cite, reason))
    title = r.get(top, "title", "", str)
    return RuleSet(version, effective, title, dict(sources), scan_outcome, tuple(prohibited), tuple(compute),
                   tuple(field_rules), source)
