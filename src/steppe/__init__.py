"""Steppe: open control plane and digital twin for a regional AI compute hub."""

__version__ = "0.1.0"
