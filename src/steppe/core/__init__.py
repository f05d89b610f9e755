"""Pure domain types shared by the twin and the live hub: GPUs, nodes, jobs, plans, errors."""
