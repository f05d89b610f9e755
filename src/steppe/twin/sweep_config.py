"""Read a sweep from the command line and a TOML file, and check all of it before any replay.

Every value comes from the command line (comma-separated lists) or a TOML file; a value given
on the command line wins over the file's. The file's keys are the options' names with ``_``::

    trace = "philly:/work/shared/traces/philly/philly.csv"
    limit = 20000                  # optional, as are the rest but clusters
    clusters = ["60x8:H200", "80x8:H200"]
    policies = ["fifo", "easy-backfill", "multifactor", "las"]
    power_caps = ["none", "500kW"]
    sites = ["none"]               # "none": no site; a capped point then runs at astana
    power_policy = "cap"           # also: seed, walltime_factor, walltime_round, cap_floor,
                                   # start, check_invariants

Each problem is refused with one line that names the option (``--policies``) or the file and key
(``sweep.toml: policies``), says what is wrong and shows an accepted value. Checking means
loading every cluster and site, making every policy and building the power setup of every
(cluster, cap, site) once, so a cap the idle fleet already exceeds fails here, not in a worker
an hour later:

>>> sweep_from_inputs({"trace": "philly-sample", "clusters": "8x8:H100", "policies": "fifo,lottery"})
Traceback (most recent call last):
...
steppe.twin.sweep_config.SweepInputError: --policies: unknown policy 'lottery'; valid: easy-backfill, \
fifo, las, multifactor, srtf (e.g. --policies fifo,easy-backfill)
>>> sweep_from_inputs({"trace": "philly-sample", "clusters": "8x8:H100", "power_caps": "none,5"}).policies
Traceback (most recent call last):
...
steppe.twin.sweep_config.SweepInputError: --power-caps: bad power '5': a number and a unit W, kW, MW or GW, or \
none (e.g. --power-caps none,500kW)
>>> s = sweep_from_inputs({"trace": "philly-sample", "clusters": "8x8:H100", "power_caps": "none,50kW"})
>>> s.policies, s.power_caps, s.sites
(('fifo', 'easy-backfill', 'multifactor', 'las'), (None, '50kW'), (None,))
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from steppe.core.cluster_config import load_cluster
from steppe.core.errors import SteppeError
from steppe.core.units import parse_power
from steppe.energy.site import load_site
from steppe.scheduling.policies import POLICIES
from steppe.twin.power import DEFAULT_START
from steppe.twin.sweep import ReplayOptions, Sweep, TraceRequest
from steppe.twin.trace import Trace

DEFAULT_POLICIES = ("fifo", "easy-backfill", "multifactor", "las")

# key -> (accepted example on the command line, the same in TOML)
_EXAMPLES: dict[str, tuple[str, str]] = {
    "trace": ("philly:/work/shared/traces/philly/philly.csv", '"philly-sample"'),
    "clusters": ("60x8:H200,80x8:H200", '["60x8:H200", "80x8:H200"]'),
    "policies": ("fifo,easy-backfill", '["fifo", "easy-backfill"]'),
    "power_caps": ("none,500kW", '["none", "500kW"]'),
    "sites": ("none,astana", '["none", "astana"]'),
    "limit": ("20000", "20000"),
    "seed": ("0", "0"),
    "walltime_factor": ("2.0", "2.0"),
    "walltime_round": ("3600", "3600"),
    "power_policy": ("cap", '"cap"'),
    "cap_floor": ("0.6", "0.6"),
    "start": ("2026-01-01T00:00", '"2026-01-01T00:00"'),
    "check_invariants": ("--check-invariants", "true"),
}
_AXES = ("clusters", "policies", "power_caps", "sites")


class SweepInputError(SteppeError):
    """A sweep's input is refused: ``WHERE: what is wrong (e.g. an accepted value)``."""


@dataclass(frozen=True)
class InputSource:
    """Where a value came from: the command line (``config`` None) or a TOML file; names it in errors."""

    config: Path | None = None

    def error(self, key: str, problem: str) -> SweepInputError:
        cli_example, toml_example = _EXAMPLES[key]
        if self.config is None:
            option = "--" + key.replace("_", "-")
            example = cli_example if cli_example.startswith("--") else f"{option} {cli_example}"
            return SweepInputError(f"{option}: {problem} (e.g. {example})")
        return SweepInputError(f"{self.config}: {key}: {problem} (e.g. {key} = {toml_example})")


def read_config(path: Path) -> dict[str, Any]:
    """The TOML file's values, keys checked (an unknown key is refused, naming the known ones)."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SweepInputError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepInputError(f"--config: {path} is not valid TOML: {exc}") from None
    for key in data:
        if key not in _EXAMPLES:
            raise SweepInputError(f"{path}: {key}: unknown key; known: {', '.join(sorted(_EXAMPLES))}")
    return data


def sweep_from_inputs(cli: Mapping[str, Any], config: Path | None = None) -> Sweep:
    """A checked sweep from the command line's values (None: not given) over the file's, if any.

    The command line's axes are comma-separated strings; the file's, lists of strings.
    """
    values: dict[str, tuple[Any, InputSource]] = {}
    if config is not None:
        source = InputSource(config)
        values.update((k, (v, source)) for k, v in read_config(config).items())
    values.update((k, (v, InputSource())) for k, v in cli.items() if v is not None)

    def get(key: str, default: Any, check: Check) -> Any:
        if key not in values:
            return default
        value, source = values[key]
        return check(value, source)

    for required in ("trace", "clusters"):
        if required not in values:
            raise InputSource().error(required, "required, in the command or the --config file")
    trace_spec = get("trace", None, _text("trace"))
    clusters = get("clusters", None, _axis("clusters", _cluster))
    policies = get("policies", DEFAULT_POLICIES, _axis("policies", _policy))
    power_caps = get("power_caps", (None,), _axis("power_caps", _power_cap))
    sites = get("sites", (None,), _axis("sites", _site))
    trace = TraceRequest(
        trace_spec,
        walltime_factor=get("walltime_factor", 2.0, _number("walltime_factor", above=0.0)),
        walltime_round_s=get("walltime_round", 3600.0, _number("walltime_round", above=0.0)),
        seed=get("seed", 0, _integer("seed", least=0)),
        limit=get("limit", None, _integer("limit", least=1)),
    )
    options = ReplayOptions(
        power_policy=get("power_policy", "cap", _choice("power_policy", ("cap", "hold"))),
        cap_floor=get("cap_floor", 0.6, _cap_floor),
        start=get("start", DEFAULT_START, _start),
        seed=trace.seed,
        check_invariants=get("check_invariants", True, _flag("check_invariants")),
    )
    sweep = Sweep(trace, clusters, policies, power_caps, sites, options)
    _check_power(sweep, values)
    return sweep


def load_checked_trace(sweep: Sweep) -> Trace:
    """The sweep's trace, read once; a reader's refusal (no such file, a bad row) names ``--trace``."""
    try:
        return sweep.trace.load()
    except SteppeError as exc:
        raise SweepInputError(f"--trace: {exc}") from None


def _check_power(sweep: Sweep, values: dict[str, tuple[Any, InputSource]]) -> None:
    """Build each distinct (cluster, cap, site)'s power setup once: a cap the idle fleet already
    exceeds at some hour is refused now, naming ``--power-caps``."""
    source = values["power_caps"][1] if "power_caps" in values else InputSource()
    seen: set[tuple[str, str | None, str | None]] = set()
    for point in sweep.points():
        key = (point.cluster, point.power_cap, point.site)
        if key in seen or point.site is None:
            continue
        seen.add(key)
        try:
            point.power(sweep.options)
        except SteppeError as exc:
            where = f"{point.power_cap or 'no cap'} for {point.cluster} at {point.site}"
            raise source.error("power_caps", f"{where}: {exc}") from None


# Checks: each takes (value, source) and returns the checked value or raises source.error(...).
Check = Callable[[Any, InputSource], Any]


def _axis(key: str, one: Callable[[str], str | None]) -> Check:
    """A comma-separated string (command line) or a list of strings (TOML) -> a tuple, each item checked."""

    def check(value: Any, source: InputSource) -> tuple[str | None, ...]:
        if isinstance(value, str) and source.config is None:
            items = [item.strip() for item in value.split(",")]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [item.strip() for item in value]
        else:
            raise source.error(key, f"expected a list of names, got {value!r}")
        if not items or any(not item for item in items):
            raise source.error(key, f"an empty name in {value!r}")
        out = []
        for item in items:
            try:
                out.append(one(item))
            except (SteppeError, ValueError) as exc:
                raise source.error(key, str(exc)) from None
        return tuple(out)

    return check


def _cluster(spec: str) -> str:
    load_cluster(spec)
    return spec


def _policy(name: str) -> str:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(sorted(POLICIES))}")
    return name


def _power_cap(text: str) -> str | None:
    if text.lower() == "none":
        return None
    try:
        watts = parse_power(text)
    except ValueError:
        raise ValueError(f"bad power {text!r}: a number and a unit W, kW, MW or GW, or none") from None
    if watts <= 0:
        raise ValueError(f"a power cap must be more than zero, got {text!r}")
    return text


def _site(name: str) -> str | None:
    if name.lower() == "none":
        return None
    load_site(name)
    return name


def _text(key: str) -> Check:
    def check(value: Any, source: InputSource) -> str:
        if not isinstance(value, str) or not value.strip():
            raise source.error(key, f"expected a non-empty string, got {value!r}")
        return value.strip()

    return check


def _integer(key: str, least: int) -> Check:
    def check(value: Any, source: InputSource) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise source.error(key, f"expected a whole number of at least {least}, got {value!r}")
        return value

    return check


def _number(key: str, above: float) -> Check:
    def check(value: Any, source: InputSource) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > above:
            raise source.error(key, f"expected a number above {above:g}, got {value!r}")
        return float(value)

    return check


def _cap_floor(value: Any, source: InputSource) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.4 <= value <= 1.0:
        raise source.error("cap_floor", f"expected a fraction of TDP within 0.4-1.0, got {value!r}")
    return float(value)


def _start(value: Any, source: InputSource) -> str:
    """A local date and time on a whole hour (``parse_start`` reads it at each point's site)."""
    try:
        start = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        start = None
    if start is None or start.minute or start.second or start.microsecond:
        raise source.error("start", f"expected a date and whole hour like 2026-01-01T00:00, got {value!r}")
    return str(value)


def _choice(key: str, choices: tuple[str, ...]) -> Check:
    def check(value: Any, source: InputSource) -> str:
        if value not in choices:
            raise source.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def _flag(key: str) -> Check:
    def check(value: Any, source: InputSource) -> bool:
        if not isinstance(value, bool):
            raise source.error(key, f"expected true or false, got {value!r}")
        return value

    return check
