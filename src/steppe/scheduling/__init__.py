"""Scheduling decides, never executes, stores or reads a clock: a cycle maps a snapshot and ``now`` to a plan."""
