"""Power in the twin: the setup a replay needs to schedule under a facility cap.

The setup is shared with the live hub and lives in ``steppe.power``; these names stay here for
the twin, the CLI and their tests. Simulated time 0 is ``start`` (a whole hour, local to the
site by default).
"""

from __future__ import annotations

from steppe.power.budget import DEFAULT_START, PowerSetup, build_power, parse_start

__all__ = ["DEFAULT_START", "PowerSetup", "build_power", "parse_start"]
