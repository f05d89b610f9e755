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
"""

from __future__ import annotations

import math


class DecayedUsage:
    """Per-tenant decayed GPU-seconds."""

    def __init__(self, half_life_s: float = 7 * 86400.0) -> None:
        if half_life_s <= 0:
            raise ValueError("half_life_s must be > 0")
        self.half_life_s = half_life_s
        self._k = math.log(2) / half_life_s
        self._value: dict[str, float] = {}
        self._since: dict[str, float] = {}
        self._rate: dict[str, int] = {}

    def value(self, tenant: str, now: float) -> float:
        """Decayed GPU-seconds of ``tenant`` at ``now``."""
        u0 = self._value.get(tenant, 0.0)
        t0 = self._since.get(tenant, now)
        rate = self._rate.get(tenant, 0)
        d = math.exp(-self._k * (now - t0))
        return u0 * d + rate * (1.0 - d) / self._k

    def change(self, tenant: str, now: float, delta_gpus: int) -> None:
        """``tenant`` starts (+) or stops (-) using ``delta_gpus`` GPUs at ``now``."""
        self._value[tenant] = self.value(tenant, now)
        self._since[tenant] = now
        self._rate[tenant] = self._rate.get(tenant, 0) + delta_gpus

    def tenants(self) -> list[str]:
        return list(self._value)
