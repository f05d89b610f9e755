"""Pausing Python's cyclic garbage collector around bulk work.

Readers and replays create hundreds of thousands of small objects (rows, ``JobSpec``,
``JobRecord``, event tuples) that form no reference cycles; the collector would still run
repeated full collections over them, costing a sixth to a third of the time. Reference
counting frees them as usual while the collector is paused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (restoring its previous state)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
