"""Executors run what the scheduler started: one protocol, a fake for the twin, real ones for the hub."""
