"""The ``steppe`` command line (Typer + rich)."""
