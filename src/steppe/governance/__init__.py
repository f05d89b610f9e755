"""Governance core: AI-use review of projects, data residency and a tamper-evident audit log.

Pure and store-independent: the API, store and CLI call these functions and keep the results.
Modules, one job each:

* ``proposal``: the proposal model, field-level validation, training-FLOP estimates;
* ``proposal_file``: the commented proposal template, reading a proposal file (one-line errors);
* ``rules`` (+ ``rules_file``): the versioned screening rules, ``screen`` and ``rule_checks``;
* ``review`` (+ ``approval``, ``terms``): the workflow, approval conditions, acceptable-use terms;
* ``residency``: sites, routes, datasets and ``decide``;
* ``admission``: ``ReviewCheck`` and ``ResidencyCheck`` for the scheduler;
* ``audit``: the hash-chained log, ``verify`` and ``export_jsonl``.

See docs/governance.md.
"""

from steppe.governance.admission import ResidencyCheck, ReviewCheck, local_date
from steppe.governance.approval import Approval, ApprovalConditions, RevocationEffect, revocation_effect
from steppe.governance.audit import (
    GENESIS,
    AuditEntry,
    AuditSink,
    MemoryAuditSink,
    VerifyResult,
    append,
    canonical,
    export_jsonl,
    next_entry,
    read_jsonl,
    verify,
)
from steppe.governance.errors import AuditError, FieldError, GovernanceError, ProposalError
from steppe.governance.proposal import (
    PEAK_BF16_FLOPS,
    AutonomyClass,
    DataCategory,
    EndUseDeclaration,
    LabellingPlan,
    Practice,
    ProposalSpec,
    RiskClass,
    Sector,
    estimate_training_flop,
    field_errors,
    parse_proposal,
)
from steppe.governance.proposal_file import proposal_template, read_proposal_file
from steppe.governance.residency import (
    Dataset,
    ResidencyDecision,
    Route,
    Sensitivity,
    Site,
    Topology,
    decide,
    load_topology,
)
from steppe.governance.review import (
    Action,
    Actor,
    Proposal,
    Role,
    State,
    Transition,
    approve,
    expire_due,
    new_proposal,
    revoke,
    submit,
)
from steppe.governance.rules import (
    Finding,
    Outcome,
    RuleCheck,
    RuleSet,
    ScreeningResult,
    load_rules,
    rule_checks,
    screen,
)
from steppe.governance.terms import TermsVersion, must_accept_terms, require_terms, terms_in_force

__all__ = [
    "GENESIS",
    "PEAK_BF16_FLOPS",
    "Action",
    "Actor",
    "Approval",
    "ApprovalConditions",
    "AuditEntry",
    "AuditError",
    "AuditSink",
    "AutonomyClass",
    "DataCategory",
    "Dataset",
    "EndUseDeclaration",
    "FieldError",
    "Finding",
    "GovernanceError",
    "LabellingPlan",
    "MemoryAuditSink",
    "Outcome",
    "Practice",
    "Proposal",
    "ProposalError",
    "ProposalSpec",
    "ResidencyCheck",
    "ResidencyDecision",
    "RevocationEffect",
    "ReviewCheck",
    "RiskClass",
    "Role",
    "Route",
    "RuleCheck",
    "RuleSet",
    "ScreeningResult",
    "Sector",
    "Sensitivity",
    "Site",
    "State",
    "TermsVersion",
    "Topology",
    "Transition",
    "VerifyResult",
    "append",
    "approve",
    "canonical",
    "decide",
    "estimate_training_flop",
    "expire_due",
    "export_jsonl",
    "field_errors",
    "load_rules",
    "load_topology",
    "local_date",
    "must_accept_terms",
    "new_proposal",
    "next_entry",
    "parse_proposal",
    "proposal_template",
    "read_jsonl",
    "read_proposal_file",
    "require_terms",
    "revocation_effect",
    "revoke",
    "rule_checks",
    "screen",
    "submit",
    "terms_in_force",
    "verify",
]
