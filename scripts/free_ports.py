"""``free_ports(n)``: ``n`` distinct free loopback ports, for the throwaway engines and benches.

Each socket stays bound until all are chosen: ports chosen one at a time can repeat, and an
engine (Ray's components, slurmctld and slurmd) refuses two of its parts on one port.

>>> a, b = free_ports(2); a != b
True
"""

from __future__ import annotations

import contextlib
import socket


def free_ports(n: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
