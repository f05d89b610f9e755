"""GPU power capping: throughput and GPU energy as a function of the cap.

A cap ``c`` is the board power limit as a fraction of TDP (``c = cap / max limit``). The curves
are the medians over all (model, batch size) training configurations of the Zeus NSDI'23
power-limit traces on A40, V100 and RTX6000 GPUs (hub-facts 0.1, "Power-cap -> throughput /
energy curve", confidence D). Where hub-facts gives a range (c <= 0.8 for energy, c <= 0.6 for
throughput) the midpoint is used; between the tabulated caps the curves are linear.

=====  ====  ====  =====  =====  =====  =====  =====
c      1.0   0.9   0.8    0.7    0.6    0.5    0.4
tput   1.00  0.99  0.97   0.95   0.915  0.80   0.64
energy 1.00  0.95  0.885  0.835  0.81   0.875  1.115
=====  ====  ====  =====  =====  =====  =====  =====

A job capped at 0.7 x TDP runs about 5 % slower and uses about 16 % less GPU energy:

>>> round(throughput_ratio(0.7), 3), round(slowdown_factor(0.7), 3), round(gpu_energy_ratio(0.7), 3)
(0.95, 1.053, 0.835)
>>> round(throughput_ratio(0.75), 3)       # halfway between 0.97 and 0.95
0.96

A capped GPU draws the smaller of the cap and what it would draw uncapped. Memory-bound LLM decode
on H200 never reaches a 300-700 W cap (arXiv 2605.11999, hub-facts 0.1), so a cap above a job's
draw neither lowers its power nor slows it:

>>> capped_power_w(uncapped_power_w=545.0, tdp_w=700.0, cap_fraction=0.7)
490.0
>>> capped_power_w(uncapped_power_w=245.0, tdp_w=700.0, cap_fraction=0.7)
245.0
>>> binding_slowdown_factor(uncapped_power_w=245.0, tdp_w=700.0, cap_fraction=0.7)
1.0

Caps outside 0.4-1.0 are outside the measured range and rejected:

>>> throughput_ratio(0.3)
Traceback (most recent call last):
...
ValueError: cap_fraction must be between 0.4 and 1.0 (fraction of TDP), got 0.3
"""

from __future__ import annotations

import numpy as np

CAP_MIN = 0.4  # lowest cap in the Zeus table, hub-facts 0.1
CAP_MAX = 1.0  # uncapped (cap = max power limit = TDP)

# hub-facts 0.1 Zeus table, columns c = 0.4 ... 1.0 (ascending for np.interp).
CAP_POINTS: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# throughput ratio (median): 0.55-0.73 -> 0.64, 0.75-0.85 -> 0.80, 0.90-0.93 -> 0.915,
# then 0.95, 0.97, 0.99, 1.00 as tabulated
THROUGHPUT_RATIOS: tuple[float, ...] = (0.64, 0.80, 0.915, 0.95, 0.97, 0.99, 1.00)
# GPU energy ratio (median): 0.84-1.39 -> 1.115, 0.80-0.95 -> 0.875, 0.78-0.84 -> 0.81, 0.82-0.85 -> 0.835,
# 0.87-0.90 -> 0.885, then 0.95, 1.00
GPU_ENERGY_RATIOS: tuple[float, ...] = (1.115, 0.875, 0.81, 0.835, 0.885, 0.95, 1.00)


def check_cap_fraction(cap_fraction: float) -> float:
    """Return ``cap_fraction`` as a float if it lies in [0.4, 1.0]; raise ``ValueError`` otherwise."""
    c = float(cap_fraction)
    if not CAP_MIN <= c <= CAP_MAX:  # also rejects NaN
        raise ValueError(
            f"cap_fraction must be between {CAP_MIN} and {CAP_MAX} (fraction of TDP), got {cap_fraction!r}"
        )
    return c


def throughput_ratio(cap_fraction: float) -> float:
    """Training throughput under the cap relative to uncapped (1.0 at c = 1)."""
    c = check_cap_fraction(cap_fraction)
    return float(np.interp(c, CAP_POINTS, THROUGHPUT_RATIOS))


def slowdown_factor(cap_fraction: float) -> float:
    """Run-time multiplier under the cap: ``1 / throughput_ratio(c)`` (>= 1)."""
    return 1.0 / throughput_ratio(cap_fraction)


def gpu_energy_ratio(cap_fraction: float) -> float:
    """GPU energy for the same work under the cap relative to uncapped (minimum near c = 0.6)."""
    c = check_cap_fraction(cap_fraction)
    return float(np.interp(c, CAP_POINTS, GPU_ENERGY_RATIOS))


def capped_power_w(uncapped_power_w: float, tdp_w: float, cap_fraction: float) -> float:
    """Board power of a GPU under the cap: ``min(c * TDP, uncapped draw)``."""
    c = check_cap_fraction(cap_fraction)
    if uncapped_power_w < 0 or tdp_w <= 0:
        raise ValueError(f"need uncapped_power_w >= 0 and tdp_w > 0, got {uncapped_power_w!r}, {tdp_w!r}")
    cap_w = round(c * tdp_w, 6)  # 0.7 * 700 is 489.99999999999994 in binary floating point
    return float(min(cap_w, uncapped_power_w))


def binding_slowdown_factor(uncapped_power_w: float, tdp_w: float, cap_fraction: float) -> float:
    """Slowdown of a job whose uncapped draw is known: 1.0 if the cap sits at or above that draw,
    else ``slowdown_factor(c)``.

    The Zeus curve was measured on jobs that reach their power limit; a job drawing less than the
    cap (decode-heavy inference, idle or interactive GPUs) is not slowed by it.
    """
    c = check_cap_fraction(cap_fraction)
    if c * tdp_w >= uncapped_power_w:
        return 1.0
    return slowdown_factor(c)
