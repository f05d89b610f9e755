"""Alembic environment: runs migrations on the connection ``open_store`` hands over."""

from __future__ import annotations

from alembic import context

from steppe.store.schema import metadata


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # Alembic runs this file; a plain import (doctest collection) does nothing
    run_migrations()
