"""Decayed GPU usage per tenant, the memory behind fair share.

Usage decays with a half-life ``h`` (Slurm's ``PriorityDecayHalfLife``, default 7 days). With
``r`` GPUs in use since ``t0`` and decayed usage ``U0`` at ``t0``, usage at ``t`` is

    U(t) = U0 * d + r * h / ln 2 * (1 - d),   d = 2 ** (-(t - t0) / h)

(the integral of ``r`` GPU-seconds per second, each decaying since it was spent). The state
updates it lazily whenever the tenant's GPU count changes, so reading it is O(1).

>>> u = DecayedUsage(half_life_s=3600.0)
>>> u.change("a", 0.0, +1)           # one GPU from t=0
>>> round(u.value("a", 3600.0))      # one hour later: (1 - 1/2) * 3600 / ln 2
2597
>>> u.values(["a", "b"], 3600.0) == {"a": u.value("a", 3600.0), "b": 0.0}
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class DecayedUsage:
    """Per-tenant decayed GPU-seconds."""

    def __init__(self, half_life_s: float = 7 * 86400.0) -> None:
        if half_life_s <= 0:
            raise ValueError("half_life_s must be > 0")
        self.half_life_s = half_life_s
        self._k = math.log(2) / half_life_s
        self._of: dict[str, list[float]] = {}  # tenant -> [U0, t0, GPUs in use since t0]

    def value(self, tenant: str, now: float) -> float:
        """Decayed GPU-seconds of ``tenant`` at ``now``."""
        got = self._of.get(tenant)
        if got is None:
            return 0.0
        u0, t0, rate = got
        k = self._k
        d = math.exp(-k * (now - t0))
        return u0 * d + rate * (1.0 - d) / k

    def values(self, tenants: Iterable[str], now: float) -> dict[str, float]:
        """``value(t, now)`` for each tenant, in their order (one call for a whole cycle)."""
        of, k = self._of, self._k
        out: dict[str, float] = {}
        for t in tenants:
            got = of.get(t)
            if got is None:
                out[t] = 0.0
            else:
                u0, t0, rate = got
                d = math.exp(-k * (now - t0))
                out[t] = u0 * d + rate * (1.0 - d) / k
        return out

    def change(self, tenant: str, now: float, delta_gpus: int) -> None:
        """``tenant`` starts (+) or stops (-) using ``delta_gpus`` GPUs at ``now``."""
        got = self._of.get(tenant)
        if got is None:
            self._of[tenant] = [0.0, now, delta_gpus]
            return
        u0, t0, rate = got
        k = self._k
        d = math.exp(-k * (now - t0))
        got[0] = u0 * d + rate * (1.0 - d) / k
        got[1] = now
        got[2] = rate + delta_gpus

    def tenants(self) -> list[str]:
        return list(self._of)

    def count(self) -> int:
        """How many tenants have usage (it only grows)."""
        return len(self._of)
