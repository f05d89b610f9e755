"""Bounded path and query parameters shared by the routes.

Every integer a client can put in a path or query string is bounded to what the store can hold
(63 bits, ``MAX_INT``), so an oversized id is a 422 naming the parameter, never an
``OverflowError`` from the database; every float is finite; free-text filters are length-limited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from steppe.client.models import MAX_INT, MAX_PAGE, MAX_WORD

JobId = Annotated[int, Path(ge=1, le=MAX_INT, description="a job id", examples=[42])]
ProposalId = Annotated[int, Path(ge=1, le=MAX_INT, description="a proposal id", examples=[1])]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"at most {MAX_PAGE} items")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]
Seq = Annotated[int, Query(ge=0, le=MAX_INT, description="an audit sequence number")]
EpochS = Annotated[float | None, Query(allow_inf_nan=False, ge=-1e12, le=1e12, description="epoch seconds")]
Filter = Annotated[str | None, Query(max_length=256)]
ShortFilter = Annotated[str | None, Query(max_length=MAX_WORD)]
