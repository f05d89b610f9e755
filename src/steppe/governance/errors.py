"""Errors of the governance core. Each message names what is wrong and where.

>>> str(ProposalError([{"field": "risk_class", "message": "Input should be 'minimal', 'medium' or 'high'"}]))
"proposal is invalid: risk_class: Input should be 'minimal', 'medium' or 'high'"
"""

from __future__ import annotations

from typing import TypedDict

from steppe.core.errors import SteppeError


class FieldError(TypedDict):
    """One field-level problem: the dotted field path and what is wrong with it."""

    field: str
    message: str


class GovernanceError(SteppeError):
    """A governance rule refuses an action (wrong state, wrong role, conflict of interest, ...)."""


class ProposalError(GovernanceError):
    """A proposal failed validation; ``errors`` lists every problem by field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        super().__init__(f"proposal is invalid: {detail}")


class AuditError(GovernanceError):
    """An audit entry cannot be written (missing reason, broken chain, non-JSON details)."""
