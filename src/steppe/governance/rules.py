"""Screening rules as data: a versioned YAML file evaluated on every proposal and amendment.

``data/governance/rules-v1.yaml`` holds four kinds of rule, each with an id, a source and a
citation, so every finding shown to a reviewer names the rule and the law behind it:

* ``prohibited``: a practice from the proposal's checklist (``Practice``) that is rejected
  (Law 230-VIII's prohibited practices; EU AI Act Art. 5 for projects with an EU nexus). Each
  rule also lists ``terms`` searched in the title and purpose: a match while the practice is not
  declared escalates to the ``purpose_scan`` outcome (enhanced review), it does not reject.
* ``compute``: thresholds on training FLOP, inclusive (``>=``): 1e24 enhanced review (hub
  design), 1e25 systemic-risk scale (EU AI Act Art. 51). The FLOP judged is the larger of the
  declared figure and the hub's estimate from GPU-hours (``ProposalSpec.screening_flop``).
* ``rules``: ``when`` conditions on proposal fields (``field: value``, ``{in: [...]}``,
  ``{not_in: [...]}``, ``{contains: [...]}`` for lists) and, optionally, ``require``d fields
  that must be present and true; the rule fires when the conditions hold and (with ``require``)
  a required field is missing or false.

The outcome is the strongest finding: reject > changes_required > enhanced_review >
standard_review. Term scanning is deterministic (case-insensitive whole words, ``*`` ends a
word prefix) and therefore blunt: it misses paraphrases and flags research *about* a practice
(e.g. "detecting dark patterns"), which is why a match only escalates to a human.

>>> from steppe.governance.proposal import EXAMPLE_PROPOSAL, parse_proposal
>>> rules = load_rules()
>>> p = parse_proposal({**EXAMPLE_PROPOSAL, "practices": ["social_scoring"]})
>>> r = screen(p, rules)
>>> r.outcome, [f.rule_id for f in r.findings]
(<Outcome.REJECT: 'reject'>, ['PRO-SOCIAL-SCORING'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from steppe.governance.proposal import DEFAULT_MFU, Practice, ProposalSpec


class Outcome(StrEnum):
    """A finding's effect, and a screening's result (the strongest effect found)."""

    REJECT = "reject"
    CHANGES_REQUIRED = "changes_required"
    ENHANCED_REVIEW = "enhanced_review"
    STANDARD_REVIEW = "standard_review"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Outcome.REJECT: 3, Outcome.CHANGES_REQUIRED: 2, Outcome.ENHANCED_REVIEW: 1, Outcome.STANDARD_REVIEW: 0}


def term_pattern(term: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive regex for a term; ``*`` continues a word, spaces match any whitespace.

    >>> bool(term_pattern("social scor*").search("A Social  Scoring app")), bool(term_pattern("scor*").search("ascore"))
    (True, False)
    """
    words = [re.escape(w.rstrip("*")) + (r"\w*" if w.endswith("*") else "") for w in term.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class ProhibitedRule:
    id: str
    practice: Practice
    scope: str  # "all" or "eu" (only for proposals with an EU nexus)
    source: str
    cite: str
    reason: str
    terms: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    def first_term_in(self, text: str) -> str | None:
        return next((t for t, p in zip(self.terms, self.patterns, strict=True) if p.search(text)), None)


@dataclass(frozen=True)
class ComputeRule:
    id: str
    at_least_flop: float
    effect: Outcome
    systemic_risk: bool
    source: str
    cite: str
    reason: str


@dataclass(frozen=True)
class Condition:
    """``path op value``; ``op`` is equals, in, not_in or contains."""

    path: str
    op: str
    value: Any

    def holds(self, proposal: ProposalSpec) -> bool:
        actual = field_value(proposal, self.path)
        if self.op == "equals":
            return bool(actual == self.value)
        if self.op == "in":
            return actual in self.value
        if self.op == "not_in":
            return actual not in self.value
        return all(v in (actual or ()) for v in self.value)  # contains


@dataclass(frozen=True)
class FieldRule:
    id: str
    when: tuple[Condition, ...]
    require: tuple[str, ...]
    effect: Outcome
    source: str
    cite: str
    reason: str


@dataclass(frozen=True)
class RuleSet:
    """A loaded rules file."""

    version: str
    effective: date
    title: str
    sources: dict[str, str]
    purpose_scan: Outcome
    prohibited: tuple[ProhibitedRule, ...]
    compute: tuple[ComputeRule, ...]
    rules: tuple[FieldRule, ...]
    path: str = ""

    def every_rule(self) -> tuple[ProhibitedRule | ComputeRule | FieldRule, ...]:
        """All rules in the file's order: prohibited practices, compute thresholds, field rules."""
        return (*self.prohibited, *self.compute, *self.rules)


@dataclass(frozen=True)
class Finding:
    """One rule that fired: its id, effect, citation and the reason shown to the reviewer."""

    rule_id: str
    effect: Outcome
    citation: str
    reason: str


@dataclass(frozen=True)
class ScreeningResult:
    """What the rules say about a proposal; shown to the reviewer and stored with the decision."""

    outcome: Outcome
    findings: tuple[Finding, ...]
    rules_version: str
    compute_flop: float
    systemic_risk: bool

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """Findings that forbid approval as the proposal stands (reject or changes required)."""
        return tuple(f for f in self.findings if f.effect.rank >= Outcome.CHANGES_REQUIRED.rank)

    def reasons(self) -> list[str]:
        """One line per finding: ``effect rule-id: reason (citation)``."""
        return [f"{f.effect} {f.rule_id}: {f.reason} ({f.citation})" for f in self.findings]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (for the API and the audit log)."""
        return {
            "outcome": str(self.outcome),
            "rules_version": self.rules_version,
            "compute_flop": self.compute_flop,
            "systemic_risk": self.systemic_risk,
            "findings": [
                {"rule_id": f.rule_id, "effect": str(f.effect), "citation": f.citation, "reason": f.reason}
                for f in self.findings
            ],
        }


@dataclass(frozen=True)
class RuleCheck:
    """One rule's result for a proposal: ``effect`` None when it did not fire (the proposal passes it)."""

    rule_id: str
    effect: Outcome | None
    citation: str
    reason: str


def rule_checks(result: ScreeningResult, rules: RuleSet) -> list[RuleCheck]:
    """Every rule of ``rules`` in file order with its result in ``result`` (a screening by those rules).

    >>> from steppe.governance.proposal import EXAMPLE_PROPOSAL, parse_proposal
    >>> rules = load_rules()
    >>> checks = rule_checks(screen(parse_proposal({**EXAMPLE_PROPOSAL, "end_use": None}), rules), rules)
    >>> [(c.rule_id, str(c.effect)) for c in checks if c.effect is not None]
    [('REQ-END-USE', 'changes_required')]
    >>> [c.rule_id for c in checks] == [r.id for r in rules.every_rule()]
    True
    """
    fired = {f.rule_id: f for f in result.findings}
    out = []
    for rule in rules.every_rule():
        f = fired.get(rule.id)
        out.append(RuleCheck(rule.id, f.effect if f else None, rule.cite, f.reason if f else ""))
    return out


def field_value(proposal: ProposalSpec, path: str) -> Any:
    """The value at a dotted path (``end_use.wmd_end_use``); None when a parent is missing."""
    value: Any = proposal
    for part in path.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value


def _present(value: Any) -> bool:
    return value is not None and value is not False and value != "" and value != []


def screen(proposal: ProposalSpec, rules: RuleSet, *, utilization: float = DEFAULT_MFU) -> ScreeningResult:
    """Evaluate every rule on ``proposal``; deterministic and order-preserving (file order)."""
    found: list[Finding] = []
    declared = set(proposal.practices)
    text = f"{proposal.title}\n{proposal.purpose}"
    for p in rules.prohibited:
        if p.practice in declared:
            if p.scope == "all" or proposal.eu_nexus:
                found.append(Finding(p.id, Outcome.REJECT, p.cite, f"declares {p.practice}: {p.reason}"))
            else:
                why = f"declares {p.practice}, prohibited for EU-linked projects; none declared, reviewer decides"
                found.append(Finding(p.id, Outcome.ENHANCED_REVIEW, p.cite, why))
            continue
        term = p.first_term_in(text)
        if term is not None:
            why = f"title or purpose mentions {term!r} ({p.practice}), a practice not declared; reviewer confirms"
            found.append(Finding(p.id, rules.purpose_scan, p.cite, why))
    flop = proposal.screening_flop(utilization)
    declared_flop = proposal.estimated_training_flop
    estimate = proposal.hub_estimated_flop(utilization)
    systemic = False
    for c in rules.compute:
        if flop >= c.at_least_flop:
            basis = f"{flop:.3g} FLOP (declared {declared_flop or 0:.3g}, hub estimate {estimate:.3g})"
            found.append(Finding(c.id, c.effect, c.cite, f"{c.reason}: {basis}"))
            systemic = systemic or c.systemic_risk
    for r in rules.rules:
        if not all(cond.holds(proposal) for cond in r.when):
            continue
        if r.require:
            missing = [path for path in r.require if not _present(field_value(proposal, path))]
            if missing:
                found.append(Finding(r.id, r.effect, r.cite, f"{r.reason}; missing or false: {', '.join(missing)}"))
        else:
            found.append(Finding(r.id, r.effect, r.cite, r.reason))
    outcome = max((f.effect for f in found), key=lambda o: o.rank, default=Outcome.STANDARD_REVIEW)
    return ScreeningResult(outcome, tuple(found), rules.version, flop, systemic)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load and validate a rules file (the packaged ``rules-v1.yaml`` by default).

    A malformed file raises ``ConfigError`` naming the file and the key, e.g.
    ``rules.yaml: prohibited[2].practice: unknown value 'mind_control'; valid: ...``.
    """
    from steppe.governance.rules_file import read_rules

    return read_rules(path)
