"""Proposal files: the commented template users start from, and reading a file into a mapping.

``proposal_template()`` writes every field of ``ProposalSpec`` (nested ones indented under their
parent) in the model's order, each preceded by comments: its meaning (the field's docstring),
whether it is required, and the accepted values (an enum's values, ``true or false``, a list of
...). Values come from ``EXAMPLE_PROPOSAL``; optional fields it lacks are shown commented out with
an example, so the template itself is a valid proposal that screening passes (``standard_review``)
and ``docs/examples/proposal.yaml`` is its output. For instance the entry for ``risk_class``::

    # The risk class the owner assigns (Law 230-VIII Art. 17(1)); high needs an oversight plan and a contact.
    # Required; one of: minimal, medium, high.
    risk_class: minimal

``read_proposal_file(path)`` reads YAML (or JSON for ``.json``) and refuses, in one line naming the
file, the line and the column, what is not a mapping or not valid YAML or JSON:
``p.yaml: line 2, column 11: not valid YAML: mapping values are not allowed here``. Field problems are
the hub's to report (``parse_proposal``), so that the client and the hub never disagree.
"""

from __future__ import annotations

import enum
import json
import textwrap
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from steppe.core.errors import ConfigError
from steppe.governance.proposal import EXAMPLE_PROPOSAL, ProposalSpec
from steppe.governance.rules_file import unwrap_annotation
from steppe.governance.yamlfile import parse_yaml

OPTIONAL_EXAMPLES: dict[str, Any] = {
    "personal_data_legal_basis": "written consent of the data subjects (Personal Data Law 94-V Art. 7)",
    "copyright_opt_out_plan": "works whose authors opted out (robots.txt, TDM reservation) are removed before training",
    "estimated_training_flop": 1.0e22,
    "human_oversight_plan": "a named operator reviews outputs weekly and can stop the service at once",
    "incident_contact": "ai-incidents@kaznu.kz",
}
"""Examples for the optional fields ``EXAMPLE_PROPOSAL`` leaves out (shown commented out)."""

WIDTH = 100
"""Comment lines are wrapped at this width."""

HEADER = """\
# An AI-use proposal for a Steppe hub (docs/governance.md, section 1; docs/examples/proposal.yaml).
#
#   steppe proposal template > proposal.yaml     this file
#   steppe proposal check proposal.yaml          the hub's screening, rule by rule; nothing is stored
#   steppe proposal submit proposal.yaml         submit it for review
#
# The values below are an example (a Kazakh language model of kaznu/kazllm): replace them with yours.
# Optional fields that are commented out: uncomment the ones that apply. YAML: `key: value`,
# text with a colon in quotes, lists as [a, b], true/false without quotes.
"""


def _accepted(annotation: Any) -> tuple[str, type[BaseModel] | None]:
    """(accepted values in words, the nested model if the field is a mapping) of an annotation."""
    annotation, is_list = unwrap_annotation(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping of the fields below", annotation
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = ", ".join(str(v.value) for v in annotation)
        return (f"a list of: {values}" if is_list else f"one of: {values}"), None
    if annotation is bool:
        return "true or false", None
    if annotation is float:
        return "a number", None
    return "text", None


def _value(key: str, value: Any) -> str:
    text: str = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=1000)
    return text.rstrip("\n")


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=f"{indent}# ",
        subsequent_indent=f"{indent}#   ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def _entry(name: str, info: FieldInfo, example: Any, indent: str) -> list[str]:
    accepted, nested = _accepted(info.annotation)
    required = info.is_required()
    lines = _comment(info.description or name, indent) + _comment(
        f"{'Required' if required else 'Optional'}; {accepted}.", indent
    )
    if nested is not None:
        lines.append(f"{indent}{name}:")
        for sub, sub_info in nested.model_fields.items():
            lines += _entry(sub, sub_info, (example or {}).get(sub), indent + "  ")
        return lines
    if example is None and not required:
        default = info.get_default(call_default_factory=True)
        if default is None:
            lines.append(f"{indent}# {_value(name, OPTIONAL_EXAMPLES.get(name, ''))}")
            return lines
        example = default
    lines.append(indent + _value(name, example))
    return lines


def proposal_template() -> str:
    """The commented template (module docstring); valid YAML and a valid proposal as it stands."""
    out = [HEADER]
    for name, info in ProposalSpec.model_fields.items():
        out += _entry(name, info, EXAMPLE_PROPOSAL.get(name), "")
        out.append("")
    return "\n".join(out)


def read_proposal_file(path: str | Path) -> dict[str, Any]:
    """The mapping a proposal file holds: YAML, or JSON for ``.json``; ``ConfigError`` in one line otherwise."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    if Path(path).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(source, f"line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}") from None
    else:
        data = parse_yaml(text, source)
    if not isinstance(data, dict):
        found = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(source, "", f"a proposal is a mapping of fields (`org: kaznu`, ...), found {found}; "
                                      "start from `steppe proposal template`")  # fmt: skip
    return data
