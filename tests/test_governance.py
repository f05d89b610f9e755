"""Governance core: proposals, screening rules, review workflow, admission, residency, audit log."""

from __future__ import annotations

import doctest
import math
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import Hub, job

import steppe.governance as gov
from steppe.core.cluster import Cluster
from steppe.core.errors import ConfigError, UnknownNameError
from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.governance import (
    Action,
    Actor,
    Approval,
    ApprovalConditions,
    AuditEntry,
    AuditError,
    Dataset,
    GovernanceError,
    MemoryAuditSink,
    Outcome,
    ProposalError,
    ProposalSpec,
    ResidencyCheck,
    ReviewCheck,
    Role,
    Sensitivity,
    State,
    TermsVersion,
)
from steppe.governance.proposal import EXAMPLE_PROPOSAL
from steppe.governance.review import apply
from steppe.scheduling.admission import DEFAULT_CHECKS
from steppe.scheduling.policies import make_policy

TODAY = date(2026, 2, 1)
RULES = gov.load_rules()
TOPOLOGY = gov.load_topology()
MEMBER = Actor("aigerim", Role.MEMBER, org="kaznu")
REVIEWER = Actor("marat", Role.REVIEWER, org="nu")
SAME_ORG_REVIEWER = Actor("dana", Role.REVIEWER, org="kaznu")
HUB_ADMIN = Actor("root", Role.HUB_ADMIN)


def spec(**changes: Any) -> ProposalSpec:
    return gov.parse_proposal({**EXAMPLE_PROPOSAL, **changes})


def approved(conditions: ApprovalConditions | None = None, **changes: Any) -> gov.Proposal:
    p = gov.new_proposal(spec(**changes))
    (t,) = gov.submit(p, MEMBER, gov.screen(p.spec, RULES), today=TODAY)
    t = apply(t.proposal, Action.START_REVIEW, REVIEWER, today=TODAY)
    c = conditions or ApprovalConditions(TODAY + timedelta(days=90), gpu_hour_cap=1000.0)
    return gov.approve(t.proposal, REVIEWER, c, today=TODAY, reason="meets the rules").proposal


def rec(job_id: int = 1, project: str = "kaznu/kazllm", gpu_type: str | None = "H200", gpus: int = 8) -> JobRecord:
    return JobRecord(job(job_id, gpus, tenant=project.split("/")[0], project=project, gpu_type=gpu_type), seq=job_id)


def snapshot(gpu_type: str = "H200") -> Any:
    return Hub.of(1, 8, gpu_type).state


# -- proposals -------------------------------------------------------------------------------
def test_public_api_is_pinned() -> None:
    assert sorted(gov.__all__) == sorted(set(gov.__all__))
    assert {"ProposalSpec", "screen", "ReviewCheck", "ResidencyCheck", "decide", "verify", "append"} <= set(gov.__all__)
    assert all(hasattr(gov, name) for name in gov.__all__)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"risk_class": "extreme"}, "risk_class", "'minimal', 'medium' or 'high'"),
        ({"autonomy_class": None}, "autonomy_class", "Input should be"),
        ({"generative": "yes"}, "generative", "valid boolean"),
        ({"requested_gpu_hours": -5.0}, "requested_gpu_hours", "greater than 0"),
        ({"requested_gpu_hours": "100"}, "requested_gpu_hours", "valid number"),
        ({"estimated_training_flop": math.inf}, "estimated_training_flop", "finite"),
        ({"gpu_type": "TPUv5"}, "gpu_type", "unknown GPU type 'TPUv5'"),
        ({"practices": ["mind_control"]}, "practices.0", "Input should be"),
        ({"practices": ["social_scoring", "social_scoring"]}, "practices", "more than once"),
        ({"incident_contact": "nobody"}, "incident_contact", "e-mail address"),
        ({"org": "../etc"}, "org", "must be 1-64 letters"),
        ({"purpose": "short"}, "purpose", "at least 20 characters"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"end_use": {**EXAMPLE_PROPOSAL["end_use"], "wmd_end_use": "no"}}, "end_use.wmd_end_use", "valid boolean"),
        ({"end_use": {**EXAMPLE_PROPOSAL["end_use"], "end_user_country": "kz"}}, "end_use.end_user_country", "ISO"),
    ],
)
def test_malformed_proposal_is_refused_field_by_field_and_nothing_is_stored(
    changes: dict[str, Any], field: str, message: str
) -> None:
    stored: list[ProposalSpec] = []
    log = MemoryAuditSink()
    with pytest.raises(ProposalError) as err:
        stored.append(gov.parse_proposal({**EXAMPLE_PROPOSAL, **changes}))
        gov.append(log, actor="aigerim", action="proposal.create", subject="kaznu/kazllm", time_s=0.0)
    assert any(e["field"] == field and message in e["message"] for e in err.value.errors), err.value.errors
    assert field in str(err.value)
    assert stored == [] and log.entries() == ()


def test_missing_fields_and_non_mapping_are_reported() -> None:
    with pytest.raises(ProposalError) as err:
        gov.parse_proposal({"org": "kaznu"})
    fields = {e["field"] for e in err.value.errors}
    assert {"project", "purpose", "risk_class", "requested_gpu_hours", "gpu_type"} <= fields
    with pytest.raises(ProposalError, match="expected an object"):
        gov.parse_proposal(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_flop_estimate_uses_datasheet_peaks_and_mfu() -> None:
    assert gov.estimate_training_flop(1, "H200") == pytest.approx(3600 * 989e12 * 0.4)
    assert gov.estimate_training_flop(10, "a100", utilization=0.5) == pytest.approx(10 * 3600 * 312e12 * 0.5)
    assert spec(requested_gpu_hours=100.0, estimated_training_flop=5e23).screening_flop() == 5e23
    with pytest.raises(UnknownNameError, match="valid: .*H200"):
        gov.estimate_training_flop(1, "V100")
    with pytest.raises(ValueError, match="utilization"):
        gov.estimate_training_flop(1, "H200", utilization=1.5)


# -- screening rules -------------------------------------------------------------------------
@pytest.mark.parametrize("rule", RULES.prohibited, ids=lambda r: r.id)
def test_each_prohibited_practice_is_rejected_with_its_rule(rule: Any) -> None:
    result = gov.screen(spec(practices=[str(rule.practice)], eu_nexus=rule.scope == "eu"), RULES)
    assert result.outcome is Outcome.REJECT
    (finding,) = [f for f in result.findings if f.effect is Outcome.REJECT]
    assert finding.rule_id == rule.id and finding.citation == rule.cite and str(rule.practice) in finding.reason


def test_eu_only_practice_without_eu_nexus_goes_to_a_reviewer() -> None:
    result = gov.screen(spec(practices=["untargeted_face_scraping"]), RULES)
    assert result.outcome is Outcome.ENHANCED_REVIEW
    assert [f.rule_id for f in result.findings] == ["PRO-EU-FACE-SCRAPING"]


@pytest.mark.parametrize(
    ("purpose", "rule_id"),
    [
        ("We build a Social Scoring system for city residents and their neighbours.", "PRO-SOCIAL-SCORING"),
        ("Research on detecting dark patterns in e-commerce user interfaces.", "PRO-MANIPULATION"),
        ("Live facial recognition at stadium entrances for the organisers.", "PRO-EU-RBI"),
    ],
)
def test_purpose_terms_escalate_but_do_not_reject(purpose: str, rule_id: str) -> None:
    result = gov.screen(spec(purpose=purpose), RULES)
    assert result.outcome is Outcome.ENHANCED_REVIEW
    assert [f.rule_id for f in result.findings] == [rule_id]


def test_terms_match_whole_words_only() -> None:
    hit = gov.screen(spec(purpose="Measuring subliminal-priming effects in reading studies."), RULES)
    assert [f.rule_id for f in hit.findings] == ["PRO-MANIPULATION"]
    miss = "Transcore socialite scorekeeping, subliminally framed grammar analysis."
    assert not gov.screen(spec(purpose=miss), RULES).findings


@pytest.mark.parametrize(
    ("flop", "outcome", "rule_ids", "systemic"),
    [
        (math.nextafter(1e24, 0), Outcome.STANDARD_REVIEW, [], False),
        (1e24, Outcome.ENHANCED_REVIEW, ["CMP-ENHANCED"], False),
        (math.nextafter(1e25, 0), Outcome.ENHANCED_REVIEW, ["CMP-ENHANCED"], False),
        (1e25, Outcome.ENHANCED_REVIEW, ["CMP-ENHANCED", "CMP-SYSTEMIC"], True),
    ],
)
def test_compute_thresholds_are_inclusive(flop: float, outcome: Outcome, rule_ids: list[str], systemic: bool) -> None:
    result = gov.screen(spec(estimated_training_flop=flop, requested_gpu_hours=10.0), RULES)
    assert (result.outcome, [f.rule_id for f in result.findings], result.systemic_risk) == (outcome, rule_ids, systemic)


def test_hub_estimate_counts_when_the_declared_figure_is_low() -> None:
    hours = 1e24 / gov.estimate_training_flop(1, "H200")
    result = gov.screen(spec(estimated_training_flop=1e20, requested_gpu_hours=hours * 1.001), RULES)
    assert [f.rule_id for f in result.findings] == ["CMP-ENHANCED"] and "hub estimate" in result.findings[0].reason


@pytest.mark.parametrize(
    ("changes", "outcome", "rule_ids"),
    [
        ({"risk_class": "high"}, Outcome.CHANGES_REQUIRED, ["REQ-HIGH-RISK", "ESC-HIGH-RISK"]),
        ({"risk_class": "high", "human_oversight_plan": "operator confirms every decision",
          "incident_contact": "safety@kaznu.kz"}, Outcome.ENHANCED_REVIEW, ["ESC-HIGH-RISK"]),
        ({"autonomy_class": "high"}, Outcome.ENHANCED_REVIEW, ["ESC-HIGH-AUTONOMY"]),
        ({"labelling_plan": None}, Outcome.CHANGES_REQUIRED, ["REQ-LABELLING"]),
        ({"labelling_plan": {"machine_readable_marking": True, "visible_warning": False, "method": "C2PA"}},
         Outcome.CHANGES_REQUIRED, ["REQ-LABELLING"]),
        ({"generative": False, "labelling_plan": None}, Outcome.STANDARD_REVIEW, []),
        ({"data_categories": ["personal_data", "cross_border_transfer"]}, Outcome.CHANGES_REQUIRED,
         ["REQ-TRANSFER-BASIS"]),
        ({"data_categories": ["personal_data", "cross_border_transfer"], "personal_data_legal_basis": "consent"},
         Outcome.STANDARD_REVIEW, []),
        ({"data_categories": ["personal_data"]}, Outcome.STANDARD_REVIEW, []),
        ({"data_categories": ["copyrighted_training_data"]}, Outcome.CHANGES_REQUIRED, ["REQ-COPYRIGHT-OPT-OUT"]),
        ({"end_use": None}, Outcome.CHANGES_REQUIRED, ["REQ-END-USE"]),
        ({"end_use": {**EXAMPLE_PROPOSAL["end_use"], "military_end_use": True}}, Outcome.REJECT, ["EXP-MILITARY"]),
        ({"end_use": {**EXAMPLE_PROPOSAL["end_use"], "wmd_end_use": True}}, Outcome.REJECT, ["EXP-WMD"]),
        ({"end_use": {**EXAMPLE_PROPOSAL["end_use"], "transfer_to_third_parties": True}}, Outcome.REJECT,
         ["EXP-DIVERSION"]),
        ({"eu_nexus": True, "sector": "employment"}, Outcome.ENHANCED_REVIEW, ["ESC-EU-ANNEX-III"]),
        ({"eu_nexus": False, "sector": "employment"}, Outcome.STANDARD_REVIEW, []),
    ],
)
def test_field_rules(changes: dict[str, Any], outcome: Outcome, rule_ids: list[str]) -> None:
    result = gov.screen(spec(**changes), RULES)
    assert (result.outcome, [f.rule_id for f in result.findings]) == (outcome, rule_ids)
    assert all(f.citation for f in result.findings) and len(result.reasons()) == len(rule_ids)


def _rules_file(tmp_path: Path, edit: Any) -> Path:
    data = yaml.safe_load((Path(gov.rules.__file__).parent.parent / "data/governance/rules-v1.yaml").read_text())
    edit(data)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (lambda d: d.pop("version"), "version", "missing"),
        (lambda d: d.update(colour="blue"), "colour", "unknown key"),
        (lambda d: d.update(effective="soon"), "effective", "must be a date"),
        (lambda d: d["prohibited"][2].update(practice="mind_control"), "prohibited[2].practice", "mind_control"),
        (lambda d: d["prohibited"][0].update(scope="mars"), "prohibited[0].scope", "'all' or 'eu'"),
        (lambda d: d["prohibited"][1].update(id=d["prohibited"][0]["id"]), "prohibited[1].id", "duplicate"),
        (lambda d: d["compute"][0].update(at_least_flop="lots"), "compute[0].at_least_flop", "must be a number"),
        (lambda d: d["compute"][1].update(effect="maybe"), "compute[1].effect", "unknown value 'maybe'"),
        (lambda d: d["rules"][0].update(source="NOPE"), "rules[0].source", "unknown source"),
        (lambda d: d["rules"][0].update(requires=["x"]), "rules[0].requires", "unknown key"),
        (lambda d: d["rules"][0]["when"].update(risk_class="hihg"), "rules[0].when.risk_class", "hihg"),
        (lambda d: d["rules"][0]["when"].update(colour="red"), "rules[0].when.colour", "unknown proposal field"),
        (lambda d: d["rules"][0].update(require=["end_use.nope"]), "rules[0].require[0]", "end_use.nope"),
        (lambda d: d["rules"][4]["when"].update(data_categories="personal_data"), "rules[4].when.data_categories",
         "contains"),
    ],
)
def test_malformed_rules_file_names_file_and_key(tmp_path: Path, edit: Any, key: str, message: str) -> None:
    path = _rules_file(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        gov.load_rules(path)
    assert (err.value.source, err.value.key) == (str(path), key) and message in err.value.problem


def test_rules_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: [1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line 2, column 1: not valid YAML: expected ',' or ']'") as bad:
        gov.load_rules(path)
    assert "\n" not in str(bad.value)  # one line, without PyYAML's excerpt of the file


def test_rules_carry_version_date_and_sources() -> None:
    assert (RULES.version, RULES.effective) == ("1", date(2026, 1, 18))
    assert {"KZ-AI", "KZ-PDL", "EU-AIA"} <= set(RULES.sources)
    assert gov.screen(spec(), RULES).rules_version == "1"


# -- review workflow -------------------------------------------------------------------------
def test_happy_path_to_approval_and_audit_fields() -> None:
    p = approved()
    assert p.state is State.APPROVED and p.approval is not None
    assert p.approval.approved_by == "marat" and p.approval.conditions.gpu_hour_cap == 1000.0


def test_screening_rejection_rejects_on_submit_citing_the_rule() -> None:
    p = gov.new_proposal(spec(practices=["social_scoring"]))
    steps = gov.submit(p, MEMBER, gov.screen(p.spec, RULES), today=TODAY)
    assert [(t.action, t.to_state) for t in steps] == [(Action.SUBMIT, State.SUBMITTED),
                                                        (Action.SCREEN_OUT, State.REJECTED)]
    assert "PRO-SOCIAL-SCORING" in steps[1].reason and steps[1].actor.role is Role.SYSTEM


def test_conflict_of_interest_is_refused() -> None:
    p = gov.new_proposal(spec())
    (t,) = gov.submit(p, MEMBER, gov.screen(p.spec, RULES), today=TODAY)
    with pytest.raises(GovernanceError, match="conflict of interest: reviewer dana belongs to kaznu"):
        apply(t.proposal, Action.START_REVIEW, SAME_ORG_REVIEWER, today=TODAY)
    t = apply(t.proposal, Action.START_REVIEW, REVIEWER, today=TODAY)
    c = ApprovalConditions(TODAY + timedelta(days=30))
    with pytest.raises(GovernanceError, match="conflict of interest"):
        gov.approve(t.proposal, SAME_ORG_REVIEWER, c, today=TODAY, reason="fine by me")


@pytest.mark.parametrize(
    ("actor", "action", "kwargs", "message"),
    [
        (MEMBER, Action.APPROVE, {}, "role member may not approve"),
        (REVIEWER, Action.APPROVE, {"reason": ""}, "a reason is required"),
        (REVIEWER, Action.APPROVE, {"reason": "ok"}, "approval needs conditions"),
        (REVIEWER, Action.APPROVE, {"reason": "ok", "conditions": ApprovalConditions(TODAY)}, "must be after today"),
        (REVIEWER, Action.APPROVE, {"reason": "ok", "conditions": ApprovalConditions(TODAY + timedelta(1), -1.0)},
         "GPU-hour cap must be > 0"),
        (REVIEWER, Action.EXPIRE, {}, "role reviewer may not expire"),
        (REVIEWER, Action.SUBMIT, {}, "it is under_review; allowed from: approved, changes_requested, draft, expired"),
    ],
)
def test_guards_refuse_with_a_clear_message(actor: Actor, action: Action, kwargs: dict[str, Any], message: str) -> None:
    p = gov.new_proposal(spec())
    (t,) = gov.submit(p, MEMBER, gov.screen(p.spec, RULES), today=TODAY)
    t = apply(t.proposal, Action.START_REVIEW, REVIEWER, today=TODAY)
    with pytest.raises(GovernanceError, match=message):
        apply(t.proposal, action, actor, today=TODAY, **kwargs)


def test_members_act_only_for_their_organisation_and_blocking_findings_stop_approval() -> None:
    p = gov.new_proposal(spec(labelling_plan=None))
    with pytest.raises(GovernanceError, match="not 'kaznu'"):
        gov.submit(p, Actor("ivan", Role.MEMBER, org="nu"), gov.screen(p.spec, RULES), today=TODAY)
    submitted, handed_back = gov.submit(p, MEMBER, gov.screen(p.spec, RULES), today=TODAY)
    # screening that requires changes hands the proposal back at once: no reviewer acts first
    assert (handed_back.action, handed_back.to_state) == (Action.SCREEN_CHANGES, State.CHANGES_REQUESTED)
    assert handed_back.actor.role is Role.SYSTEM and "REQ-LABELLING" in handed_back.reason
    with pytest.raises(GovernanceError, match="it is changes_requested; allowed from: under_review"):
        apply(handed_back.proposal, Action.APPROVE, REVIEWER, today=TODAY, reason="ok")
    fixed = spec()
    (t,) = gov.submit(handed_back.proposal, MEMBER, gov.screen(fixed, RULES), today=TODAY, spec=fixed)
    assert (t.to_state, t.proposal.revision) == (State.SUBMITTED, 2)
    # a reviewer who starts a review finds no blocking finding left; the guard still stops one that has some
    t = apply(t.proposal, Action.START_REVIEW, REVIEWER, today=TODAY)
    blocked = replace(t.proposal, screening=gov.screen(p.spec, RULES))
    with pytest.raises(GovernanceError, match=r"screening blocks approval: REQ-LABELLING \(changes_required\)"):
        gov.approve(blocked, REVIEWER, ApprovalConditions(TODAY + timedelta(30)), today=TODAY, reason="ok")


def test_amendment_keeps_the_approval_in_force_until_decided() -> None:
    p = approved()
    amended = spec(requested_gpu_hours=80_000.0)
    (t,) = gov.submit(p, MEMBER, gov.screen(amended, RULES), today=TODAY, spec=amended)
    assert t.proposal.state is State.SUBMITTED and t.proposal.approval == p.approval
    with pytest.raises(GovernanceError, match="may not change org or project"):
        gov.submit(p, MEMBER, gov.screen(amended, RULES), today=TODAY, spec=spec(project="other"))


def test_terms_must_be_accepted_before_the_first_job_and_again_when_they_change() -> None:
    v1, v2 = TermsVersion.of_text("1", date(2026, 1, 1), "be good"), TermsVersion("2", date(2026, 3, 1))
    assert v1.digest.startswith("sha256:") and len(v1.digest) == 71
    assert gov.terms_in_force([v1, v2], TODAY) == v1 and gov.terms_in_force([v1, v2], date(2026, 3, 1)) == v2
    assert gov.terms_in_force([v2], TODAY) is None
    assert gov.must_accept_terms(None, v1) and not gov.must_accept_terms("1", v1) and gov.must_accept_terms("1", v2)
    gov.require_terms("aigerim", "1", v1)
    with pytest.raises(GovernanceError, match="aigerim must accept the acceptable-use terms version 2"):
        gov.require_terms("aigerim", "1", v2)


# -- admission: review -----------------------------------------------------------------------
def review_check(approvals: dict[str, Approval], day: date = TODAY, **kw: Any) -> ReviewCheck:
    check = ReviewCheck(approvals.get, lambda now: day + timedelta(seconds=now), site="astana", **kw)
    check.begin_cycle(0.0)
    return check


def test_unapproved_project_waits_and_a_later_approval_releases_its_jobs_in_order() -> None:
    approvals: dict[str, Approval] = {}
    check = ReviewCheck(approvals.get, lambda now: TODAY, site="astana", used_gpu_hours=lambda p: 0.0)
    hub = Hub(Cluster.uniform(2, 8, "H200"), make_policy("fifo", checks=(*DEFAULT_CHECKS, check)))
    hub.submit(job(1, 8, tenant="kaznu", project="kaznu/kazllm"), job(2, 8, tenant="nu", project="nu/asr"),
               job(3, 8, tenant="kaznu", project="kaznu/kazllm"))
    approvals["nu/asr"] = Approval("nu/asr", "nu", ApprovalConditions(TODAY + timedelta(30)), "marat", TODAY)
    plan = hub.step(0.0)
    assert hub.started(plan) == [2]
    assert plan.reasons == {1: PendingReason.AWAITING_REVIEW, 3: PendingReason.AWAITING_REVIEW}
    approvals["kaznu/kazllm"] = approved().approval  # type: ignore[assignment]
    assert hub.started(hub.step(1.0)) == [1]


@pytest.mark.parametrize(
    ("conditions", "job_gpu", "fleet", "used", "reason", "why"),
    [
        (ApprovalConditions(TODAY + timedelta(30)), "H200", "H200", 0.0, None, None),
        (ApprovalConditions(TODAY + timedelta(30), allowed_gpu_types=frozenset({"a100"})), "H200", "H200", 0.0,
         PendingReason.AWAITING_REVIEW, "allows GPU types A100, not H200"),
        (ApprovalConditions(TODAY + timedelta(30), allowed_gpu_types=frozenset({"H200"})), None, "H100", 0.0,
         PendingReason.AWAITING_REVIEW, "names no GPU type"),
        (ApprovalConditions(TODAY + timedelta(30), allowed_gpu_types=frozenset({"H200"})), None, "H200", 0.0,
         None, None),
        (ApprovalConditions(TODAY + timedelta(30), allowed_sites=frozenset({"Almaty"})), "H200", "H200", 0.0,
         PendingReason.AWAITING_REVIEW, "allows sites almaty, not astana"),
        (ApprovalConditions(TODAY + timedelta(30), gpu_hour_cap=100.0), "H200", "H200", 99.9, None, None),
        (ApprovalConditions(TODAY + timedelta(30), gpu_hour_cap=100.0), "H200", "H200", 100.0,
         PendingReason.ASSOC_GRP_GRES_MINUTES, "used 100.0 of the 100.0 GPU-hours"),
    ],
)
def test_approval_conditions_are_enforced(
    conditions: ApprovalConditions, job_gpu: str | None, fleet: str, used: float, reason: Any, why: str | None
) -> None:
    a = Approval("kaznu/kazllm", "kaznu", conditions, "marat", TODAY)
    check = review_check({a.project: a}, used_gpu_hours=lambda p: used)
    r = rec(gpu_type=job_gpu)
    assert check.check(r, snapshot(fleet), Counter()) is reason
    got = check.why(r)
    assert got is None if why is None else why in (got or "")


def test_expiry_holds_queued_jobs_from_the_day_after_expires_on() -> None:
    a = approved(ApprovalConditions(date(2026, 3, 31))).approval
    assert a is not None
    on_last_day, day_after = review_check({a.project: a}, date(2026, 3, 31)), review_check({a.project: a},
                                                                                            date(2026, 4, 1))
    assert on_last_day.check(rec(), snapshot(), Counter()) is None
    assert day_after.check(rec(), snapshot(), Counter()) is PendingReason.AWAITING_REVIEW
    assert day_after.why(rec()) == "approval of kaznu/kazllm expired on 2026-03-31"
    p = approved(ApprovalConditions(date(2026, 3, 31)))
    assert gov.expire_due(p, date(2026, 3, 31)) is None
    t = gov.expire_due(p, date(2026, 4, 1))
    assert t is not None and t.to_state is State.EXPIRED and t.actor.role is Role.SYSTEM


@pytest.mark.parametrize(("choice", "cancel", "finish"), [("finish", (), (4, 9)), ("cancel", (4, 9), ())])
def test_revocation_stops_new_starts_and_running_jobs_finish_or_cancel(
    choice: Any, cancel: tuple[int, ...], finish: tuple[int, ...]
) -> None:
    p = approved()
    t = gov.revoke(p, REVIEWER, today=TODAY + timedelta(5), reason="misuse reported", running_jobs=choice)
    assert t.to_state is State.REVOKED and t.proposal.approval is not None
    a = t.proposal.approval
    check = review_check({a.project: a}, TODAY + timedelta(5))
    assert check.check(rec(), snapshot(), Counter()) is PendingReason.AWAITING_REVIEW
    assert "revoked on 2026-02-06: misuse reported" in (check.why(rec()) or "")
    assert gov.revocation_effect(a, running_job_ids=[9, 4]) == gov.RevocationEffect(cancel, finish)
    assert t.audit_fields()["details"]["approval"]["running_jobs"] == choice


def test_revocation_needs_a_reason_an_approval_and_a_valid_choice() -> None:
    p = approved()
    with pytest.raises(GovernanceError, match="a reason is required"):
        gov.revoke(p, HUB_ADMIN, today=TODAY, reason=" ", running_jobs="finish")
    with pytest.raises(GovernanceError, match="'finish' or 'cancel'"):
        gov.revoke(p, HUB_ADMIN, today=TODAY, reason="x", running_jobs="pause")  # type: ignore[arg-type]
    with pytest.raises(GovernanceError, match="it is draft"):
        gov.revoke(gov.new_proposal(spec()), HUB_ADMIN, today=TODAY, reason="x", running_jobs="finish")


def test_review_check_needs_begin_cycle() -> None:
    none: dict[str, Approval] = {}
    check = ReviewCheck(none.get, lambda now: TODAY)
    with pytest.raises(GovernanceError, match="begin_cycle"):
        check.check(rec(), snapshot(), Counter())


# -- residency -------------------------------------------------------------------------------
def dataset(sensitivity: Sensitivity = Sensitivity.PERSONAL, location: str = "astana", allowed: str = "KZ EU",
            forbidden: str = "", size: int = 10**12) -> Dataset:
    return Dataset("patients", "KZ", sensitivity, location, size, frozenset(allowed.split()),
                   frozenset(forbidden.split()))


@pytest.mark.parametrize(
    ("ds", "site", "allowed", "route", "reason"),
    [
        (dataset(), "frankfurt", True, "astana-frankfurt-north", "over astana-frankfurt-north in ~1,143 s"),
        (dataset(forbidden="RU"), "frankfurt", True, "astana-frankfurt-transcaspian", "not astana-frankfurt-north"),
        (dataset(forbidden="AZ"), "frankfurt", True, "astana-frankfurt-north", "transits AZ"),
        (dataset(forbidden="RU GE"), "frankfurt", False, None, "every route from astana to frankfurt does"),
        (dataset(allowed=""), "frankfurt", False, None, "only in KZ (Personal Data Law 94-V localisation)"),
        (dataset(allowed=""), "almaty", True, "astana-almaty-domestic", "moves from astana"),
        (dataset(allowed="", location="almaty"), "almaty", True, None, "held at almaty"),
        (dataset(Sensitivity.RESTRICTED, allowed=""), "frankfurt", False, None, "only in KZ; site frankfurt"),
        (dataset(Sensitivity.PUBLIC, allowed="", location="almaty"), "frankfurt", True,
         "almaty-frankfurt-transcaspian", "moves from almaty"),
        (dataset(location="almaty", forbidden="GE"), "frankfurt", False, None,
         "almaty-frankfurt-transcaspian transits GE"),
    ],
)
def test_residency_on_both_routes(ds: Dataset, site: str, allowed: bool, route: str | None, reason: str) -> None:
    d = gov.decide(ds, site, TOPOLOGY)
    assert (d.allowed, d.route) == (allowed, route)
    assert reason in d.reason
    assert (d.staging_time_s is not None) == allowed


def test_staging_time_formula() -> None:
    d = gov.decide(dataset(forbidden="RU"), "frankfurt", TOPOLOGY)
    assert d.staging_time_s == pytest.approx(8e12 / (10e9 * 0.7) + 3 * 0.070)
    north = gov.decide(dataset(), "frankfurt", TOPOLOGY)
    assert north.staging_time_s == pytest.approx(8e12 / 7e9 + 3 * 0.053)
    assert gov.decide(dataset(location="frankfurt", allowed="EU KZ"), "frankfurt", TOPOLOGY).staging_time_s == 0.0


def test_residency_check_holds_jobs_and_shows_staging() -> None:
    registry = {"local": dataset(allowed="", location="astana"), "eu-only": replace(dataset(allowed="EU"), name="eu"),
                "remote": replace(dataset(location="almaty", allowed=""), name="remote")}
    check = ResidencyCheck({1: ["local"], 2: ["local", "eu-only"], 3: ["unknown"], 5: ["remote"]}, registry,
                           TOPOLOGY, site="Astana")
    check.begin_cycle(0.0)
    snap = snapshot()
    assert check.check(rec(1), snap, Counter()) is None and check.staging_time_s(rec(1)) == 0.0
    assert check.check(rec(2), snap, Counter()) is PendingReason.DATA_RESIDENCY
    assert "may be processed only in EU" in (check.why(rec(2)) or "")
    assert check.check(rec(3), snap, Counter()) is PendingReason.DATA_RESIDENCY
    assert check.why(rec(3)) == "dataset unknown is not registered"
    assert check.check(rec(4), snap, Counter()) is None
    assert check.check(rec(5), snap, Counter()) is None
    assert [d.route for d in check.staging(rec(5))] == ["astana-almaty-domestic"]
    assert check.staging_time_s(rec(5)) == pytest.approx(8e12 / 7e9 + 3 * 0.0119)


def test_topology_matches_hub_facts_and_rejects_bad_files(tmp_path: Path) -> None:
    routes = {r.name: r for r in TOPOLOGY.routes}
    assert routes["astana-frankfurt-transcaspian"].rtt_ms == (56.0, 70.0)
    assert routes["astana-frankfurt-north"].rtt_ms == (43.0, 53.0) and "RU" in routes["astana-frankfurt-north"].path
    assert TOPOLOGY.site("Frankfurt").within(["EU"]) and TOPOLOGY.site("almaty").region == "kz"
    with pytest.raises(UnknownNameError, match="valid: almaty, astana, frankfurt"):
        TOPOLOGY.site("paris")
    bad = tmp_path / "topology.yaml"
    bad.write_text("sites: {astana: {jurisdiction: KZ}}\nroutes:\n  - {name: x, between: [astana, mars], "
                   "path: [KZ], rtt_ms: [1, 2], bandwidth_gbps: 1}\n")
    with pytest.raises(ConfigError, match=r"topology.yaml: routes\[0\].between: must name two sites"):
        gov.load_topology(bad)


# -- audit log -------------------------------------------------------------------------------
def audit_log(n: int = 5) -> MemoryAuditSink:
    log = MemoryAuditSink()
    for i in range(n):
        gov.append(log, actor="marat", action="quota.change", subject=f"org{i}", reason=f"raise #{i}",
                   time_s=1000.0 + i, details={"gpu_quota": [8, 16 + i], "note": "Қазақ"})
    return log


def _rehash(e: AuditEntry) -> AuditEntry:
    return replace(e, hash=gov.audit.entry_hash(e))


def _forged(entries: list[AuditEntry]) -> list[AuditEntry]:
    fake = _rehash(AuditEntry(3, 1.5, "mallory", "quota.change", "org9", "because", {}, entries[1].hash))
    return [*entries[:2], fake, *entries[2:]]


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "problem"),
    [
        (lambda es: [*es[:2], replace(es[2], actor="mallory"), *es[3:]], 3, "hash does not match its content"),
        (lambda es: [*es[:2], replace(es[2], details={"gpu_quota": [8, 99]}), *es[3:]], 3, "edited"),
        (lambda es: [*es[:2], replace(es[2], time_s=2.0), *es[3:]], 3, "edited"),
        (lambda es: [*es[:2], *es[3:]], 4, "expected 3"),
        (lambda es: es[1:], 2, "expected 1"),
        (lambda es: [es[0], es[2], es[1], *es[3:]], 3, "reordered"),
        (_forged, 3, "position 4 has seq 3, expected 4"),
        (lambda es: _forged(es)[:3] + [_rehash(replace(e, seq=e.seq + 1)) for e in es[2:]], 4, "prev_hash"),
        (lambda es: [*es[:2], _rehash(replace(es[2], reason="no reason")), *es[3:]], 4, "prev_hash"),
        (lambda es: [*es[:2], *(_rehash(replace(e, seq=e.seq - 1)) for e in es[3:])], 3, "prev_hash"),
    ],
    ids=["edit-actor", "edit-details", "edit-time", "delete", "delete-first", "reorder", "insert", "insert-renumber",
         "rehash-one", "delete-and-renumber"],
)
def test_audit_verification_fails_on_each_kind_of_tampering(tamper: Any, bad_seq: int, problem: str) -> None:
    entries = list(audit_log().entries())
    assert gov.verify(entries).ok
    result = gov.verify(tamper(entries))
    assert not result.ok and result.first_bad_seq == bad_seq and problem in result.problem, result


def test_removing_the_tail_is_caught_against_the_recorded_head() -> None:
    log = audit_log()
    head = gov.verify(log.entries()).head
    assert head is not None and head[0] == 5
    truncated = list(log.entries())[:-1]
    assert gov.verify(truncated).ok  # a chain alone cannot tell
    result = gov.verify(truncated, expect_head=head)
    assert not result.ok and result.first_bad_seq == 5 and "removed from the end" in result.problem
    gov.append(log, actor="root", action="token.issue", subject="aigerim", time_s=2000.0)
    assert gov.verify(log.entries(), expect_head=head).ok  # the log may grow past the head
    rewritten = [*list(log.entries())[:4], _rehash(replace(log.entries()[4], actor="x")), *log.entries()[5:]]
    assert "recorded head" in gov.verify(rewritten[:5], expect_head=head).problem


def test_export_writes_canonical_json_lines_that_verify(tmp_path: Path) -> None:
    log = audit_log(3)
    path = tmp_path / "audit.jsonl"
    assert gov.export_jsonl(log.entries(), path) == 3
    lines = path.read_bytes().splitlines()
    assert lines[0].startswith(b'{"action":"quota.change","actor":"marat","details":{"gpu_quota":[8,16],"note":"')
    assert "Қазақ".encode() in lines[0] and b" " not in lines[0].replace(b"raise #0", b"")
    back = gov.read_jsonl(path)
    assert back == list(log.entries()) and gov.verify(back).ok
    path.write_text("{}\n")
    with pytest.raises(AuditError, match="audit.jsonl:1: not an audit entry"):
        gov.read_jsonl(path)


def test_audit_entries_need_reasons_for_quota_changes_and_json_details() -> None:
    log = MemoryAuditSink()
    for action in ("quota.change", "allocation.create", "allocation.delete"):
        with pytest.raises(AuditError, match="a reason is required"):
            gov.append(log, actor="root", action=action, subject="kaznu", time_s=0.0, reason="  ")
    with pytest.raises(AuditError, match=r"details.when: date is not JSON"):
        gov.append(log, actor="root", action="token.issue", subject="u", time_s=0.0, details={"when": TODAY})
    with pytest.raises(AuditError, match="NaN or infinity"):
        gov.append(log, actor="root", action="token.issue", subject="u", time_s=0.0, details={"x": math.nan})
    assert log.entries() == ()
    e = gov.append(log, actor="root", action="token.issue", subject="u", time_s=0, details={"ids": (1, 2)})
    assert e.details == {"ids": [1, 2]} and e.time_s == 0.0 and gov.verify(log.entries()).ok
    assert gov.verify([replace(e, time_s=0)]).ok  # a store handing back an int time does not break the hash
    with pytest.raises(AuditError, match="does not continue the chain"):
        log.append(replace(e, seq=5))


def test_review_transitions_write_to_the_audit_log() -> None:
    log = MemoryAuditSink()
    p = gov.new_proposal(spec())
    steps = gov.submit(p, MEMBER, gov.screen(p.spec, RULES), today=TODAY)
    steps.append(apply(steps[-1].proposal, Action.START_REVIEW, REVIEWER, today=TODAY))
    steps.append(gov.approve(steps[-1].proposal, REVIEWER, ApprovalConditions(TODAY + timedelta(30)), today=TODAY,
                             reason="standard review passed"))
    for i, t in enumerate(steps):
        gov.append(log, time_s=float(i), **t.audit_fields())
    entries = log.entries()
    assert [e.action for e in entries] == ["review.submit", "review.start_review", "review.approve"]
    assert entries[0].details["screening"]["outcome"] == "standard_review"
    assert entries[2].details["approval"]["conditions"]["expires_on"] == "2026-03-03"
    assert gov.verify(entries).ok


def test_examples_in_the_docs_run() -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "governance.md"
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 10
