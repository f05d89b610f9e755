"""The live hub's control plane: the single-writer loop, restart recovery and allocation checks."""
