"""Facility efficiency: PUE as a function of outdoor temperature (hub-facts section 2, confidence D).

::

    PUE(T_out) = 1 + f_overhead + m(T_out) / COP(T_set)
    COP(T)     = 0.0068 T^2 + 0.0008 T + 0.458          (Moore et al., USENIX ATC'05; T in deg C)
    m(T_out)   = clip((T_out - T_limit) / band, 0, 1)    mechanical-cooling fraction

``f_overhead`` covers power distribution, lighting and fans (hub-facts: 0.06-0.10). Below the
economizer limit ``T_limit`` cooling is free (outside air, or dry coolers for liquid); above
``T_limit + band`` chillers carry the whole heat load; in between the share rises linearly.

Air cooling: limit 18 deg C dry bulb, band 5 deg C, overhead 0.08, CRAC supply 20 deg C (COP 3.19):

>>> round(cop(20.0), 2)
3.19
>>> pue(-14.2, AIR_COOLING), round(pue(27.0, AIR_COOLING), 3), round(pue(20.5, AIR_COOLING), 3)
(1.08, 1.393, 1.237)

Warm-water direct liquid cooling: dry coolers suffice up to ~30 deg C outside, coolant inlet 40 deg C
(so COP ~11 even with the chiller on) and lower fan overhead, hence <= 1.15 all year:

>>> pue(10.0, LIQUID_COOLING), round(pue(40.0, LIQUID_COOLING), 3)
(1.06, 1.148)

``pue_array`` is the same function over a numpy array of hourly temperatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

CoolingKind = Literal["air", "liquid"]
COOLING_KINDS: tuple[str, ...] = ("air", "liquid")


def cop(t_set_c: float) -> float:
    """Coefficient of performance of the CRAC/chiller at supply temperature ``t_set_c`` (Moore et al.)."""
    return 0.0068 * t_set_c**2 + 0.0008 * t_set_c + 0.458


@dataclass(frozen=True, slots=True)
class CoolingSpec:
    """How a facility is cooled: economizer limit and band (deg C), other overhead, chiller set point."""

    kind: CoolingKind
    economizer_limit_c: float
    band_c: float
    f_overhead: float
    t_set_c: float

    def __post_init__(self) -> None:
        if self.kind not in COOLING_KINDS:
            raise ValueError(f"cooling kind must be one of {', '.join(COOLING_KINDS)}, got {self.kind!r}")
        if self.band_c <= 0:
            raise ValueError(f"band_c must be > 0, got {self.band_c!r}")
        if not 0.0 <= self.f_overhead < 1.0:
            raise ValueError(f"f_overhead must be in [0, 1), got {self.f_overhead!r}")
        if cop(self.t_set_c) <= 0:
            raise ValueError(f"t_set_c {self.t_set_c!r} gives a non-positive COP")

    @property
    def chiller_overhead(self) -> float:
        """Cooling power per IT watt with the chiller fully on: ``1 / COP(T_set)``."""
        return 1.0 / cop(self.t_set_c)


AIR_COOLING = CoolingSpec(
    kind="air",
    economizer_limit_c=18.0,  # hub-facts 2: air-side economizer limit ~18 deg C dry bulb (65 F; assumption)
    band_c=5.0,  # hub-facts 2: m(T_out) linear over a ~5 deg C band
    f_overhead=0.08,  # hub-facts 2: f_dist + f_fans 0.06-0.10 (midpoint); gives PUE 1.08 free-cooling
    t_set_c=20.0,  # hub-facts 0.2 crac.cop(20 C) = 3.19 -> chiller overhead 0.31 W/W_IT
)

LIQUID_COOLING = CoolingSpec(
    kind="liquid",
    economizer_limit_c=30.0,  # hub-facts 2: warm-water DLC dry-cooler limit ~27-35 deg C (assumption)
    band_c=5.0,  # hub-facts 2: same ~5 deg C band
    f_overhead=0.06,  # hub-facts 2: low end of 0.06-0.10 (few server fans; DLC PUE 1.08-1.15 there)
    # hub-facts 0.2 pue.direct_liquid: 40-45 deg C coolant inlet (gpusolutions.ai); the COP formula is
    # extrapolated there (Moore et al. fitted CRAC air), giving 11.4, i.e. <= 1.15 with the chiller on
    t_set_c=40.0,
)

COOLING_PRESETS: dict[str, CoolingSpec] = {"air": AIR_COOLING, "liquid": LIQUID_COOLING}


def mechanical_fraction(t_out_c: float, cooling: CoolingSpec) -> float:
    """Share of the heat load carried by chillers at outdoor temperature ``t_out_c``, in [0, 1]."""
    return float(min(max((t_out_c - cooling.economizer_limit_c) / cooling.band_c, 0.0), 1.0))


def pue(t_out_c: float, cooling: CoolingSpec) -> float:
    """Power usage effectiveness at outdoor temperature ``t_out_c`` (deg C)."""
    return 1.0 + cooling.f_overhead + mechanical_fraction(t_out_c, cooling) * cooling.chiller_overhead


def pue_array(t_out_c: ArrayLike, cooling: CoolingSpec) -> np.ndarray:
    """``pue`` over an array of outdoor temperatures (e.g. one value per hour)."""
    t = np.asarray(t_out_c, dtype=float)
    m = np.clip((t - cooling.economizer_limit_c) / cooling.band_c, 0.0, 1.0)
    return np.asarray(1.0 + cooling.f_overhead + m * cooling.chiller_overhead)
