"""The hub's store: SQLAlchemy tables, Alembic migrations and small repositories.

SQLite (WAL) in the data directory by default, PostgreSQL by URL. ``open_store`` creates the
engine and applies every migration, so a store is always at the latest schema when used.
"""

from steppe.store.db import Store, open_store

__all__ = ["Store", "open_store"]
