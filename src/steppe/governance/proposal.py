"""Project proposals: what a project declares before it may get compute, and the hub's FLOP estimate.

A proposal states the project's purpose and sector, its risk class and autonomy class as the
owner self-assigns them (Law 230-VIII "On Artificial Intelligence", Art. 17(1) and 17(2)), the
data it uses, the practices it involves (from a fixed vocabulary the screening rules refer to),
its estimated training compute, an output-labelling plan for generative systems (Art. 21) and
an end-use declaration (the export-control terms of the hub's GPUs; hub-facts 0.4 alem.gpu).

Validation is structural and strict: unknown keys, wrong types, unknown enum values and empty
texts are refused field by field (``field_errors``). Before that, the raw mapping is walked
(``check_structure``): NUL characters and lone surrogates in any string or key, non-finite
numbers, integers beyond 63 bits, nesting deeper than ``MAX_DEPTH`` and more than ``MAX_VALUES``
values are refused, each naming its dotted path, so nothing of the kind reaches the store or the
audit log. Numbers are bounded (``requested_gpu_hours`` at most ``MAX_GPU_HOURS``,
``estimated_training_flop`` at most ``MAX_FLOP``) so that the FLOP estimate stays finite.
Conditional duties (a high-risk system needs a human-oversight plan, ...) are not checked here
but by the versioned screening rules (``steppe.governance.rules``), so they can change without a
code change.

Training compute is estimated as GPU-hours x 3,600 s x peak dense BF16 FLOP/s x MFU
(reference/governance.md, review item 5). Peak values are NVIDIA datasheet figures for dense
BF16 (half the "with sparsity" figure):

=========  ==================  =====================================================
GPU type   peak dense BF16      source
=========  ==================  =====================================================
A100       312 TFLOP/s          NVIDIA A100 Tensor Core GPU datasheet (SXM)
H100       989 TFLOP/s          NVIDIA H100 Tensor Core GPU datasheet (SXM, 1,979 sparse)
H200       989 TFLOP/s          NVIDIA H200 Tensor Core GPU datasheet (SXM, same core as H100)
B200       ~2,250 TFLOP/s       NVIDIA HGX B200 datasheet (per GPU); hub-facts section 5
GB200      ~2,500 TFLOP/s       NVIDIA GB200 NVL72 datasheet (per GPU, 360 PFLOP/s sparse / 72)
=========  ==================  =====================================================

The model FLOP utilisation (MFU) defaults to 0.4, the figure reference/governance.md uses;
large dense training runs report 0.3-0.5 (PaLM: 46 %), so the estimate may be off by ~25 %
either way. The screening rules therefore take the larger of the declared and the estimated
compute. Example: 1,000 H200 GPU-hours -> 1,000 x 3,600 x 989e12 x 0.4 = 1.42e21 FLOP.

>>> f"{estimate_training_flop(1000, 'H200'):.3g}"
'1.42e+21'
>>> p = parse_proposal({**EXAMPLE_PROPOSAL, "risk_class": "extreme"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
steppe.governance.errors.ProposalError: proposal is invalid: risk_class: Input should be 'minimal', ... (e.g. 'minimal')
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from steppe.core.errors import UnknownNameError
from steppe.core.text import text_problem
from steppe.governance.errors import FieldError, ProposalError

PEAK_BF16_FLOPS: dict[str, float] = {
    "A100": 312e12,
    "H100": 989e12,
    "H200": 989e12,
    "B200": 2250e12,
    "GB200": 2500e12,
}
"""Peak dense BF16 FLOP/s per GPU (NVIDIA datasheets; see the module docstring)."""

DEFAULT_MFU = 0.4
"""Model FLOP utilisation assumed by ``estimate_training_flop`` (reference/governance.md item 5)."""

MAX_GPU_HOURS = 1e9
"""The most GPU-hours a proposal may request (as allocations: 100,000 GPUs for more than a year)."""
MAX_FLOP = 1e32
"""The largest declared training compute (the largest runs of 2025 are near 5e26 FLOP)."""
MAX_DEPTH = 8
"""Nesting levels of a proposal (the form itself has two)."""
MAX_VALUES = 2000
"""Values (strings, numbers, items, keys) in one proposal."""
MAX_STRING = 10_000
"""Characters of any string in a proposal (``Text`` fields' limit)."""
MAX_KEY = 64
"""Characters of a key."""
_MAX_INT = 2**63 - 1


def estimate_training_flop(gpu_hours: float, gpu_type: str, utilization: float = DEFAULT_MFU) -> float:
    """Training FLOP of ``gpu_hours`` on ``gpu_type`` at ``utilization`` of peak dense BF16.

    GPU-hours of H200 for 1e24 FLOP, and days on 500 H200 for 1e25 (reference/governance.md: ~585):

    >>> round(1e24 / estimate_training_flop(1, "H200")), round(1e25 / estimate_training_flop(500 * 24, "H200"))
    (702168, 585)
    """
    peak = PEAK_BF16_FLOPS.get(gpu_type.upper())
    if peak is None:
        raise UnknownNameError("GPU type for FLOP estimates", gpu_type, list(PEAK_BF16_FLOPS))
    if gpu_hours < 0:
        raise ValueError(f"gpu_hours must be >= 0, got {gpu_hours}")
    if not 0.0 < utilization <= 1.0:
        raise ValueError(f"utilization must be in (0, 1], got {utilization}")
    return gpu_hours * 3600.0 * peak * utilization


class RiskClass(StrEnum):
    """Law 230-VIII Art. 17(1): self-assigned by the system's owner."""

    MINIMAL = "minimal"
    MEDIUM = "medium"
    HIGH = "high"


class AutonomyClass(StrEnum):
    """Law 230-VIII Art. 17(2): low (human decides), medium (human can correct), high (cannot)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Sector(StrEnum):
    """Where the system will be used; the EU AI Act Annex III domains are named so rules can refer to them."""

    RESEARCH = "research"
    EDUCATION = "education"
    HEALTHCARE = "healthcare"
    FINANCE = "finance"
    PUBLIC_ADMINISTRATION = "public-administration"
    ENERGY = "energy"
    AGRICULTURE = "agriculture"
    TRANSPORT = "transport"
    TELECOMMUNICATIONS = "telecommunications"
    MEDIA = "media"
    MANUFACTURING = "manufacturing"
    EMPLOYMENT = "employment"
    CRITICAL_INFRASTRUCTURE = "critical-infrastructure"
    BIOMETRICS = "biometrics"
    LAW_ENFORCEMENT = "law-enforcement"
    MIGRATION = "migration"
    JUSTICE = "justice"
    OTHER = "other"


class DataCategory(StrEnum):
    """Categories of data the project uses that the rules ask about."""

    PERSONAL_DATA = "personal_data"
    CROSS_BORDER_TRANSFER = "cross_border_transfer"
    COPYRIGHTED_TRAINING_DATA = "copyrighted_training_data"


class Practice(StrEnum):
    """Practices a proposal declares (a checklist on the form). Which of them are prohibited is
    decided by the rules file, not here; the names follow Law 230-VIII's prohibitions and EU AI Act Art. 5."""

    SUBLIMINAL_MANIPULATION = "subliminal_manipulation"
    EXPLOITING_VULNERABILITIES = "exploiting_vulnerabilities"
    SOCIAL_SCORING = "social_scoring"
    EMOTION_RECOGNITION_WITHOUT_CONSENT = "emotion_recognition_without_consent"
    UNLAWFUL_PERSONAL_DATA_PROCESSING = "unlawful_personal_data_processing"
    PROHIBITED_CONTENT = "prohibited_content"
    REALTIME_REMOTE_BIOMETRIC_ID = "realtime_remote_biometric_id"
    WORKPLACE_EDUCATION_EMOTION_RECOGNITION = "workplace_education_emotion_recognition"
    UNTARGETED_FACE_SCRAPING = "untargeted_face_scraping"
    SENSITIVE_BIOMETRIC_CATEGORISATION = "sensitive_biometric_categorisation"
    INDIVIDUAL_PREDICTIVE_POLICING = "individual_predictive_policing"
    EMOTION_RECOGNITION_WITH_CONSENT = "emotion_recognition_with_consent"
    BIOMETRIC_IDENTIFICATION = "biometric_identification"
    AUTOMATED_DECISIONS = "automated_decisions"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return AfterValidator(check)


Name = Annotated[str, _matching(_NAME, "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")]
Email = Annotated[str, _matching(_EMAIL, "an e-mail address")]
Country = Annotated[str, _matching(_COUNTRY, "an ISO 3166-1 alpha-2 country code such as 'KZ'")]
Text = Annotated[str, Field(min_length=1, max_length=MAX_STRING)]
Flop = Annotated[float, Field(strict=True, ge=0, le=MAX_FLOP, allow_inf_nan=False)]


class _Strict(BaseModel):
    # Each field's docstring is its description: what it means and the accepted form. The commented
    # template (``steppe.governance.proposal_file.proposal_template``) prints them.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=False,
                              use_attribute_docstrings=True)  # fmt: skip


class LabellingPlan(_Strict):
    """Art. 21: synthetic outputs carry a machine-readable marking and a perceivable warning."""

    machine_readable_marking: StrictBool
    """Outputs carry a machine-readable marking (a watermark or a C2PA manifest)."""
    visible_warning: StrictBool
    """Users see a warning that the content is generated."""
    method: Text
    """How both are done, in words."""


class EndUseDeclaration(_Strict):
    """The end user and end use the GPUs' export licence asks about (terms assumed: reference/governance.md item 6)."""

    end_user: Text
    """Who will use the results (an organisation's name)."""
    end_user_country: Country
    """The end user's country: an ISO 3166-1 alpha-2 code such as KZ."""
    end_use: Text
    """What the results will be used for, in words."""
    military_end_use: StrictBool
    """The end use is military (the screening rejects it)."""
    wmd_end_use: StrictBool
    """The end use relates to weapons of mass destruction (the screening rejects it)."""
    transfer_to_third_parties: StrictBool
    """The compute or the results are passed on to third parties (the screening rejects it)."""


class ProposalSpec(_Strict):
    """What a project declares to get compute. Optional fields are required by rules when they apply."""

    org: Name
    """The proposing organisation's name at this hub: 1-64 letters, digits, '.', '_' or '-'."""
    project: Name
    """The project within the organisation (it must exist; jobs name it as org/project)."""
    title: Annotated[str, Field(min_length=3, max_length=200)]
    """What the system is, in 3-200 characters."""
    purpose: Annotated[str, Field(min_length=20, max_length=10_000)]
    """What the system is for and who uses it, in 20-10,000 characters (scanned for prohibited practices)."""
    sector: Sector
    """Where the system will be used (the EU AI Act Annex III domains are named)."""
    risk_class: RiskClass
    """The risk class the owner assigns (Law 230-VIII Art. 17(1)); high needs an oversight plan and a contact."""
    autonomy_class: AutonomyClass
    """Law 230-VIII Art. 17(2): low (a human decides), medium (a human can correct), high (cannot)."""
    generative: StrictBool
    """The system generates text, images, audio or video (Art. 21: it then needs a labelling_plan)."""
    practices: list[Practice] = Field(default_factory=list)
    """Practices the system involves; the rules reject the prohibited ones (Law 230-VIII; EU AI Act Art. 5)."""
    data_categories: list[DataCategory] = Field(default_factory=list)
    """Kinds of data used that the rules ask about."""
    personal_data_legal_basis: Text | None = None
    """The legal basis for processing personal data (needed with personal_data and cross_border_transfer)."""
    copyright_opt_out_plan: Text | None = None
    """How authors' opt-outs are honoured (needed with copyrighted_training_data)."""
    requested_gpu_hours: Annotated[float, Field(strict=True, gt=0, le=MAX_GPU_HOURS, allow_inf_nan=False)]
    """GPU-hours requested: a number above 0, at most 1e9."""
    gpu_type: Annotated[str, Field(max_length=16)]
    """The GPU type requested: A100, H100, H200, B200 or GB200."""
    estimated_training_flop: Flop | None = None
    """Declared training compute in FLOP (e.g. 1.0e+22); the rules judge the larger of it and the hub's estimate."""
    labelling_plan: LabellingPlan | None = None
    """How generated outputs are marked (Art. 21); needed when generative is true."""
    human_oversight_plan: Text | None = None
    """How people oversee the system and can stop it; needed for high risk."""
    incident_contact: Email | None = None
    """An e-mail address for incidents; needed for high risk."""
    eu_nexus: StrictBool = False
    """The project has EU partners, users or data: the EU AI Act's prohibitions apply too."""
    end_use: EndUseDeclaration | None = None
    """The end user and end use (the GPUs' export licence); the screening requires one (REQ-END-USE)."""

    @field_validator("gpu_type")
    @classmethod
    def _known_gpu(cls, value: str) -> str:
        if value.upper() not in PEAK_BF16_FLOPS:
            raise ValueError(f"unknown GPU type {value!r}; valid: {', '.join(PEAK_BF16_FLOPS)}")
        return value.upper()

    @field_validator("practices", "data_categories")
    @classmethod
    def _no_duplicates(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError("lists an item more than once")
        return value

    @property
    def key(self) -> str:
        """The project key used by jobs: ``org/project``."""
        return f"{self.org}/{self.project}"

    def hub_estimated_flop(self, utilization: float = DEFAULT_MFU) -> float:
        """The hub's own estimate from the requested GPU-hours and GPU type."""
        return estimate_training_flop(self.requested_gpu_hours, self.gpu_type, utilization)

    def screening_flop(self, utilization: float = DEFAULT_MFU) -> float:
        """The compute the rules judge: the larger of the declared and the hub's estimate."""
        return max(self.estimated_training_flop or 0.0, self.hub_estimated_flop(utilization))


_EXAMPLE_TYPES = frozenset({
    "missing", "bool_type", "bool_parsing", "float_type", "float_parsing", "finite_number", "string_type",
    "greater_than", "less_than_equal", "string_too_short", "int_type", "enum",
})  # fmt: skip


def _example_at(path: tuple[Any, ...]) -> Any:
    node: Any = EXAMPLE_PROPOSAL
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str | int | float) else None


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Turn a pydantic error into ``[{field, message}]`` with dotted paths (``end_use.wmd_end_use``),
    with an accepted example where the example proposal has one; at most 20 of them."""
    out: list[FieldError] = []
    for err in exc.errors()[:20]:
        field = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        example = _example_at(tuple(err["loc"]))
        if err["type"] in _EXAMPLE_TYPES and example is not None:
            message += f" (e.g. {example!r})" if isinstance(example, str) else f" (e.g. {str(example).lower()})"
        elif err["type"] == "extra_forbidden":
            message += f" (an unknown field; {_known_fields(tuple(err['loc']))})"
        out.append({"field": field, "message": message})
    return out


def _known_fields(path: tuple[Any, ...]) -> str:
    """``did you mean 'purpose'?`` for a misspelt key at ``path``, else the keys accepted there."""
    model: type[BaseModel] = ProposalSpec
    for part in path[:-1]:
        inner = model.model_fields.get(str(part))
        kind = next((a for a in typing.get_args(inner.annotation) if isinstance(a, type)), None) if inner else None
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            break
        model = kind
    names = list(model.model_fields)
    close = difflib.get_close_matches(str(path[-1]), names, n=1)
    return f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(names)}"


def check_structure(data: Any) -> list[FieldError]:
    """Problems of a raw proposal that no field may have, each with its dotted path.

    NUL characters and lone surrogates in strings and keys, strings longer than ``MAX_STRING``,
    keys longer than ``MAX_KEY``, non-finite numbers, integers beyond 63 bits, nesting deeper than
    ``MAX_DEPTH`` and more than ``MAX_VALUES`` values (the walk stops there).

    >>> check_structure({"title": "a\\x00b", "x": [{"y": float("inf")}]})  # doctest: +NORMALIZE_WHITESPACE
    [{'field': 'title', 'message': 'must not contain a NUL character (\\\\u0000, at character 1)'},
     {'field': 'x.0.y', 'message': 'must be a finite number, not Infinity or NaN (e.g. 1e24)'}]
    """
    out: list[FieldError] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    seen = 0
    while stack and len(out) < 20:
        path, value = stack.pop()
        field = ".".join(str(p) for p in path)
        seen += 1
        if seen > MAX_VALUES:
            out.append({"field": "", "message": f"too large: at most {MAX_VALUES:,} values in a proposal"})
            break
        if len(path) > MAX_DEPTH:
            out.append({"field": field, "message": f"nested too deeply (at most {MAX_DEPTH} levels)"})
            continue
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is None and len(value) > MAX_STRING:
                problem = f"must be at most {MAX_STRING:,} characters (got {len(value):,})"
            if problem:
                out.append({"field": field, "message": problem})
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int) and not -_MAX_INT <= value <= _MAX_INT:
            out.append({"field": field, "message": "too large: integers must fit in 63 bits"})
        elif isinstance(value, float) and not math.isfinite(value):
            out.append({"field": field, "message": "must be a finite number, not Infinity or NaN (e.g. 1e24)"})
        elif isinstance(value, Mapping):
            children = []
            for key, item in value.items():
                key_problem = _key_problem(key)
                if key_problem:
                    out.append({"field": f"{field}.{key!r}" if field else repr(key), "message": key_problem})
                    continue
                children.append(((*path, key), item))
            stack.extend(reversed(children))
        elif isinstance(value, list | tuple):
            stack.extend(reversed([((*path, i), item) for i, item in enumerate(value)]))
    return out


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"keys must be strings, not {type(key).__name__}"
    problem = text_problem(key)
    if problem is None and len(key) > MAX_KEY:
        problem = f"keys must be at most {MAX_KEY} characters (got {len(key):,})"
    return f"the key {problem}" if problem else None


def parse_proposal(data: Mapping[str, Any]) -> ProposalSpec:
    """Validate a proposal; raise ``ProposalError`` listing every bad field (nothing is stored then).

    The raw mapping is checked first (``check_structure``), then the fields (``ProposalSpec``).
    """
    if not isinstance(data, Mapping):
        raise ProposalError([{"field": "", "message": f"expected an object, got {type(data).__name__}"}])
    problems = check_structure(data)
    if problems:
        raise ProposalError(problems)
    try:
        return ProposalSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise ProposalError(field_errors(exc)) from None


EXAMPLE_PROPOSAL: dict[str, Any] = {
    "org": "kaznu",
    "project": "kazllm",
    "title": "Kazakh language model",
    "purpose": "Pretrain an open Kazakh-Russian-English language model for public-sector assistants.",
    "sector": "research",
    "risk_class": "minimal",
    "autonomy_class": "low",
    "generative": True,
    "requested_gpu_hours": 50_000.0,
    "gpu_type": "H200",
    "labelling_plan": {"machine_readable_marking": True, "visible_warning": True, "method": "C2PA manifest + banner"},
    "end_use": {
        "end_user": "Al-Farabi Kazakh National University",
        "end_user_country": "KZ",
        "end_use": "civil research and public services",
        "military_end_use": False,
        "wmd_end_use": False,
        "transfer_to_third_parties": False,
    },
}
"""A well-formed proposal used by examples and tests."""
