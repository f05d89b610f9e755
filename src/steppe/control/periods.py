"""Accounting periods (``2026``, ``2026-H1``, ``2026-Q1``, ``2026-03``): they live in
``steppe.metering.periods``, beside the meter that splits usage at month ends; these names stay
here for the API and the allocation code."""

from __future__ import annotations

from steppe.metering.periods import (
    month_key,
    month_start,
    months_between,
    next_month_start,
    period_bounds,
    split_by_month,
)

__all__ = ["month_key", "month_start", "months_between", "next_month_start", "period_bounds", "split_by_month"]
