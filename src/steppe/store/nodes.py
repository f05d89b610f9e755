"""Repository of drained nodes: which nodes an operator drained, why, by whom and since when.

Example: ``drain(conn, "gpu01", "bad fan", "root", 10.0)`` then ``drained(conn)`` lists one row
(``gpu01``, ``bad fan``, ``root``, 10.0); ``resume(conn, "gpu01")`` returns that row and removes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from steppe.store.schema import node_drains


def drained(conn: Connection) -> list[Any]:
    """Every drained node (``node``, ``reason``, ``actor``, ``since_s``), by name."""
    return list(conn.execute(select(node_drains).order_by(node_drains.c.node)))


def drain(conn: Connection, node: str, reason: str, actor: str, now: float) -> Any | None:
    """Mark ``node`` drained (a node drained already takes the new reason); returns the earlier row, if any."""
    before = conn.execute(select(node_drains).where(node_drains.c.node == node)).first()
    if before is not None:
        conn.execute(node_drains.update().where(node_drains.c.node == node).values(reason=reason, actor=actor))
    else:
        conn.execute(node_drains.insert().values(node=node, reason=reason, actor=actor, since_s=now))
    return before


def resume(conn: Connection, node: str) -> Any | None:
    """Take ``node`` out of the drained nodes; returns its row (None: it was not drained)."""
    before = conn.execute(select(node_drains).where(node_drains.c.node == node)).first()
    if before is not None:
        conn.execute(delete(node_drains).where(node_drains.c.node == node))
    return before
