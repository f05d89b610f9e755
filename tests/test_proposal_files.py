"""Proposal files: the commented template and the example in docs/ are valid proposals that screening passes,
name every field with its meaning and accepted values; a malformed file is one line with its line and column;
a wrong field names the field, what is wrong and an accepted example; screening is reported rule by rule."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from steppe.core.errors import ConfigError
from steppe.governance import load_rules, parse_proposal, screen
from steppe.governance.errors import ProposalError
from steppe.governance.proposal import EXAMPLE_PROPOSAL, ProposalSpec, Sector
from steppe.governance.proposal_file import proposal_template, read_proposal_file
from steppe.governance.rules import Outcome, rule_checks

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_FILE = ROOT / "docs" / "examples" / "proposal.yaml"
RULES = load_rules()


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted name, description) of every field, nested ones included."""
    out = []
    for name, info in model.model_fields.items():
        out.append((prefix + name, info.description or ""))
        for arg in (info.annotation, *typing.get_args(info.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out += _fields(arg, f"{prefix}{name}.")
    return out


@pytest.mark.parametrize("text", [proposal_template(), EXAMPLE_FILE.read_text()], ids=["template", "docs-example"])
def test_template_and_example_parse_and_pass_screening(text: str) -> None:
    spec = parse_proposal(yaml.safe_load(text))
    result = screen(spec, RULES)
    assert result.outcome is Outcome.STANDARD_REVIEW and not result.blocking


def test_the_docs_example_is_the_template() -> None:
    assert EXAMPLE_FILE.read_text() == proposal_template(), (
        "regenerate it: steppe proposal template > docs/examples/proposal.yaml"
    )


def test_template_explains_every_field_with_its_accepted_values() -> None:
    text = proposal_template()
    fields = _fields(ProposalSpec)
    assert len(fields) == len(ProposalSpec.model_fields) + 3 + 6  # labelling plan and end use are nested
    flat = " ".join(line.lstrip("# ").strip() for line in text.splitlines())
    for name, description in fields:
        assert description, f"{name} has no description"
        assert " ".join(description.split()) in flat, name
        key = name.rsplit(".", 1)[-1]
        assert any(line.lstrip(" #").startswith(f"{key}:") for line in text.splitlines()), name
    assert "Required; one of: minimal, medium, high." in text
    assert ", ".join(s.value for s in Sector) in flat
    assert "# human_oversight_plan: " in text  # an optional field with an example, commented out


def test_optional_fields_uncommented_still_pass(tmp_path: Path) -> None:
    lines = [
        line[2:] if line.startswith("# ") and line[2:].split(":")[0] in ProposalSpec.model_fields else line
        for line in proposal_template().splitlines()
    ]
    path = tmp_path / "full.yaml"
    path.write_text("\n".join(lines))
    spec = parse_proposal(read_proposal_file(path))
    assert spec.human_oversight_plan and spec.incident_contact and spec.estimated_training_flop == 1e22
    assert screen(spec, RULES).outcome is Outcome.STANDARD_REVIEW


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "p.yaml",
            "title: a\npurpose: b: c\n",
            "p.yaml: line 2, column 11: not valid YAML: mapping values are not allowed here",
        ),
        (
            "p.yaml",
            "org: kaznu\n  project: x\n",
            "p.yaml: line 2, column 10: not valid YAML: mapping values are not allowed here",
        ),
        (
            "p.yaml",
            "practices: [a, b\ngpu_type: H200\n",
            "p.yaml: line 2, column 9: not valid YAML: expected ',' or ']'",
        ),
        ("p.yaml", "", "p.yaml: a proposal is a mapping of fields (`org: kaznu`, ...), found nothing"),
        ("p.yaml", "- org\n", "p.yaml: a proposal is a mapping of fields (`org: kaznu`, ...), found a list"),
        ("p.json", '{"org": "kaznu",\n "x": }', "p.json: line 2, column 7: not valid JSON: Expecting value"),
    ],
)
def test_a_malformed_file_is_one_line_with_line_and_column(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as bad:
        read_proposal_file(path)
    assert str(bad.value).startswith(str(tmp_path / message.split(":", 1)[0]) + ":")
    assert message.split(": ", 1)[1] in str(bad.value) and "\n" not in str(bad.value)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml: cannot read: No such file"):
        read_proposal_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": None}, "title", "Input should be a valid string"),
        ({"purpse": "x"}, "purpse", "an unknown field; did you mean 'purpose'?"),
        ({"risk_class": "extreme"}, "risk_class", "Input should be 'minimal', 'medium' or 'high' (e.g. 'minimal')"),
        ({"generative": "yes"}, "generative", "(e.g. true)"),
        ({"requested_gpu_hours": "lots"}, "requested_gpu_hours", "(e.g. 50000.0)"),
        (
            {"end_use": {**EXAMPLE_PROPOSAL["end_use"], "wmd": False}},
            "end_use.wmd",
            "an unknown field; valid: end_user, end_user_country",
        ),
    ],
)
def test_a_wrong_field_is_named_with_what_is_wrong_and_an_example(changes: dict[str, object], field: str,
                                                                   message: str) -> None:  # fmt: skip
    data = {**EXAMPLE_PROPOSAL, **changes}
    with pytest.raises(ProposalError) as bad:
        parse_proposal(data)
    [error] = [e for e in bad.value.errors if e["field"] == field]
    assert message in error["message"]


def test_a_missing_field_names_it_with_an_example() -> None:
    data = {k: v for k, v in EXAMPLE_PROPOSAL.items() if k != "purpose"}
    with pytest.raises(ProposalError) as bad:
        parse_proposal(data)
    assert bad.value.errors == [
        {"field": "purpose", "message": f"Field required (e.g. {EXAMPLE_PROPOSAL['purpose']!r})"}
    ]


def test_rule_checks_list_every_rule_with_its_citation() -> None:
    spec = parse_proposal({**EXAMPLE_PROPOSAL, "risk_class": "high"})
    checks = rule_checks(screen(spec, RULES), RULES)
    ids = [r.id for r in RULES.every_rule()]
    assert [c.rule_id for c in checks] == ids
    assert all(c.citation for c in checks)
    fired = {c.rule_id: c.effect for c in checks if c.effect is not None}
    assert fired == {"REQ-HIGH-RISK": Outcome.CHANGES_REQUIRED, "ESC-HIGH-RISK": Outcome.ENHANCED_REVIEW}
    assert next(c for c in checks if c.rule_id == "REQ-HIGH-RISK").reason.endswith(
        "missing or false: human_oversight_plan, incident_contact"
    )
