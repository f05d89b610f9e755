"""Tests of the executors against their real engines (Slurm; Ray), each started by a fixture."""
