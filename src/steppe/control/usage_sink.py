"""The live hub's usage sink: the meter's records go to the allocation ledger at once and to the
store with the loop's next transaction.

``StoreSink.add`` counts each record in the ledger (so the next cycle's GPU-hours check sees it)
and buffers it as a ``usage_records`` row; ``take_rows`` hands the buffer to ``Journal.flush``,
merged per ``(job, month, GPU type)``, where ``Store.add_usage`` adds it to the stored record
(an upsert). Example: two 10-second charges of a 2-GPU job in one step become one row of 40
GPU-seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from steppe.control.ledger import Ledger
from steppe.metering.records import ENERGY_FIELDS, UsageRecord, merged_source


class StoreSink:
    """A ``UsageSink`` that feeds the ledger and buffers store rows."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._rows: dict[tuple[int, str, str], dict[str, Any]] = {}

    def add(self, records: Sequence[UsageRecord]) -> None:
        records = list(records)
        self.ledger.add(records)
        ids = self.ledger.project_ids
        for r in records:
            key = (r.job_id, r.period, r.gpu_type)
            row = self._rows.get(key)
            if row is None:
                self._rows[key] = r.row(ids.get(r.project, 0))
                continue
            row["gpu_seconds"] += r.gpu_seconds
            for name in ENERGY_FIELDS:
                row[name] += getattr(r, name)
            row["energy_source"] = merged_source(row["energy_source"], r.source)
            row["first_s"] = min(row["first_s"], r.first_s)
            row["last_s"] = max(row["last_s"], r.last_s)

    def take_rows(self) -> list[dict[str, Any]]:
        """The rows buffered since the last call."""
        rows, self._rows = list(self._rows.values()), {}
        return rows
