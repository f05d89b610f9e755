"""Governance commands: ``steppe proposal``, ``steppe dataset``, ``steppe terms`` and ``steppe audit``.

They talk to the hub through the SDK only. ``proposal template`` prints the commented proposal
format (every field, its meaning and accepted values; docs/examples/proposal.yaml is its output);
``proposal check FILE`` asks the hub to screen it without storing anything and prints every rule
with its result and citation; ``proposal submit FILE`` reads a YAML or JSON proposal
(docs/governance.md, section 1; a malformed file is one line naming its line and column) and
prints the screening with each finding's rule, effect, reason and citation; ``proposal show``
prints the proposal's text (the fields a reviewer decides on), its screening, approval and
history; ``proposal review ID --action approve --expires-on DATE ...``
records a reviewer's decision; ``audit verify`` checks the hub's hash chain (with ``--head
SEQ:HASH`` from an earlier export, also truncation) or an exported file (``--file``);
``audit export --out FILE`` writes JSON lines and prints the head to keep. Listings print a
header line (``--json`` for scripts).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from steppe.client import HubClient
from steppe.client import models as m
from steppe.governance.audit import read_jsonl, verify
from steppe.governance.proposal_file import proposal_template, read_proposal_file

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]
proposal_app = typer.Typer(
    help="AI-use review proposals: template, check, submit, amend, show, list, review.", no_args_is_help=True
)
dataset_app = typer.Typer(help="Datasets with jurisdiction, sensitivity and residency policy.", no_args_is_help=True)
terms_app = typer.Typer(help="The hub's acceptable-use terms.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log: verify and export.", no_args_is_help=True)


def _client() -> HubClient:
    return HubClient.from_config()


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%S") if t else "N/A"


def _read_spec(path: Path) -> dict[str, Any]:
    return read_proposal_file(path)


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    """Rows under a header line, each column as wide as its widest cell (the last one left ragged)."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for cells in (columns, *rows):
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip())


def _print_spec(spec: dict[str, Any]) -> None:
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    typer.echo("Proposal text:")
    for line in text.splitlines():
        typer.echo(f"  {line}")


def _print_proposal(p: m.Proposal, as_json: bool) -> None:
    if as_json:
        typer.echo(p.model_dump_json(indent=2))
        return
    typer.echo(f"Proposal {p.id} for {p.project}: {p.state} (revision {p.revision})")
    if p.spec:
        _print_spec(p.spec)
    if p.screening is not None:
        s = p.screening
        typer.echo(f"Screening (rules v{s.rules_version}): {s.outcome}; training compute {s.compute_flop:.3g} FLOP"
                   + ("; systemic-risk scale" if s.systemic_risk else ""))
        for f in s.findings:
            typer.echo(f"  {f.effect:<16} {f.rule_id}: {f.reason} ({f.citation})")
    if p.approval is not None:
        c = p.approval["conditions"]
        state = "in force" if p.approval_current else "not in force"
        typer.echo(f"Approval ({state}) by {p.approval['approved_by']} on {p.approval['approved_on']}: "
                   f"expires {c['expires_on']}, cap {c['gpu_hour_cap'] or 'none'} GPU-hours, "
                   f"GPU types {','.join(c['allowed_gpu_types']) or 'any'}, "
                   f"sites {','.join(c['allowed_sites']) or 'any'}")
        if p.approval.get("revoked_on"):
            typer.echo(f"Revoked on {p.approval['revoked_on']}: {p.approval['revoke_reason']} "
                       f"(running jobs: {p.approval['running_jobs']})")
    for t in p.transitions or []:
        typer.echo(f"  {_when(t.t_s)}  {t.action:<16} {t.from_state} -> {t.to_state} by {t.actor} ({t.role})"
                   + (f": {t.reason}" if t.reason else ""))


@proposal_app.command("template")
def proposal_template_cmd() -> None:
    """Print a commented proposal to fill in: every field, what it means, the accepted values.

    Example: steppe proposal template > proposal.yaml
    """
    typer.echo(proposal_template(), nl=False)


@proposal_app.command("check")
def proposal_check(
    file: Annotated[Path, typer.Argument(help="proposal as YAML or JSON")], as_json: JsonOpt = False
) -> None:
    """Screen a proposal with the hub's rules, rule by rule; nothing is stored (exit 1 if screening would block it).

    Example: steppe proposal check proposal.yaml
    """
    c = _client().check_proposal(_read_spec(file))
    if as_json:
        typer.echo(c.model_dump_json(indent=2))
    else:
        s = c.screening
        typer.echo(f"Screening of {c.project} (rules v{s.rules_version}, nothing stored): {s.outcome}; "
                   f"training compute {s.compute_flop:.3g} FLOP" + ("; systemic-risk scale" if s.systemic_risk else ""))
        for r in c.rules:
            typer.echo(f"  {r.result:<16} {r.rule_id}" + (f": {r.reason}" if r.reason else "") + f" ({r.citation})")
        typer.echo(f"Next: {c.next_step}")
    if c.screening.outcome in ("reject", "changes_required"):
        raise typer.Exit(1)


@proposal_app.command("submit")
def proposal_submit(
    file: Annotated[Path, typer.Argument(help="proposal as YAML or JSON")], as_json: JsonOpt = False
) -> None:
    """Submit a proposal; prints the screening result with each rule's reason."""
    _print_proposal(_client().submit_proposal(_read_spec(file)), as_json)


@proposal_app.command("amend")
def proposal_amend(proposal_id: int, file: Annotated[Path, typer.Argument(help="the changed proposal")],
                   as_json: JsonOpt = False) -> None:  # fmt: skip
    """Submit a changed proposal (screened again): after changes were requested (by a reviewer or by the
    screening itself), or to amend an approved or expired one."""
    _print_proposal(_client().amend_proposal(proposal_id, _read_spec(file)), as_json)


@proposal_app.command("show")
def proposal_show(proposal_id: int, as_json: JsonOpt = False) -> None:
    """A proposal's text (what a reviewer decides on), its screening, approval and history."""
    _print_proposal(_client().get_proposal(proposal_id), as_json)


@proposal_app.command("list")
def proposal_list(
    project: Annotated[str | None, typer.Option("--project", "-A")] = None,
    state: Annotated[str | None, typer.Option(help="e.g. submitted, under_review")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Proposals you may see (your organisation's; reviewers and hub-admins: all)."""
    items = _client().list_proposals(project, state)
    if as_json:
        typer.echo(json.dumps([p.model_dump(mode="json") for p in items], indent=2))
        return
    rows = [[str(p.id), p.project, p.state, str(p.revision), p.screening.outcome if p.screening else "-",
             "in force" if p.approval_current else "-"] for p in items]  # fmt: skip
    print_table(["ID", "PROJECT", "STATE", "REVISION", "SCREENING", "APPROVAL"], rows)


@proposal_app.command("review")
def proposal_review(
    proposal_id: int,
    action: Annotated[str, typer.Option(help="start_review, request_changes, approve, reject, revoke, expire")],
    reason: Annotated[str, typer.Option(help="required for decisions")] = "",
    expires_on: Annotated[str | None, typer.Option(help="approve: last day, YYYY-MM-DD")] = None,
    gpu_hour_cap: Annotated[float | None, typer.Option(help="approve: GPU-hour cap")] = None,
    gpu_type: Annotated[list[str] | None, typer.Option(help="approve: allowed GPU type, repeatable")] = None,
    site: Annotated[list[str] | None, typer.Option(help="approve: allowed site, repeatable")] = None,
    running_jobs: Annotated[str, typer.Option(help="revoke: finish or cancel running jobs")] = "finish",
    as_json: JsonOpt = False,
) -> None:
    """A reviewer's action on a proposal (a reviewer never acts on their own organisation's)."""
    body = m.ReviewAction.model_validate({
        "action": action, "reason": reason, "expires_on": date.fromisoformat(expires_on) if expires_on else None,
        "gpu_hour_cap": gpu_hour_cap, "allowed_gpu_types": gpu_type or [], "allowed_sites": site or [],
        "running_jobs": running_jobs,
    })  # fmt: skip
    _print_proposal(_client().review(proposal_id, body), as_json)


@dataset_app.command("register")
def dataset_register(
    name: str,
    jurisdiction: Annotated[str, typer.Option(help="ISO country code whose law governs it")],
    sensitivity: Annotated[str, typer.Option(help="public, internal, personal or restricted")],
    location: Annotated[str, typer.Option(help="the site holding it")],
    size_bytes: Annotated[int, typer.Option(help="size in bytes")],
    allow: Annotated[list[str] | None, typer.Option(help="jurisdiction where it may be processed, repeatable")] = None,
    forbid_transit: Annotated[list[str] | None, typer.Option(help="country it may not cross, repeatable")] = None,
) -> None:
    """Register a dataset (hub-admin)."""
    body = m.DatasetCreate(name=name, jurisdiction=jurisdiction.upper(), sensitivity=sensitivity,  # type: ignore[arg-type]
                           location=location, size_bytes=size_bytes, allowed_jurisdictions=allow or [],
                           forbidden_transit=forbid_transit or [])
    d = _client().register_dataset(body)
    typer.echo(f"Registered dataset {d.name} ({d.sensitivity}, {d.jurisdiction}) at {d.location}")
    if d.here is not None:
        typer.echo(f"Here ({d.here.site}): {'allowed' if d.here.allowed else 'denied'}: {d.here.reason}")


@dataset_app.command("list")
def dataset_list(as_json: JsonOpt = False) -> None:
    """Datasets and whether each may be used at this hub's site (route, staging time)."""
    items = _client().list_datasets()
    if as_json:
        typer.echo(json.dumps([d.model_dump(mode="json") for d in items], indent=2))
        return
    rows = []
    for d in items:
        here = d.here
        eta = f"~{here.staging_time_s:,.0f} s" if here and here.staging_time_s is not None else "-"
        verdict = ("allowed" if here.allowed else "denied") if here else "?"
        rows.append([d.name, d.sensitivity, d.jurisdiction, d.location, verdict, eta, here.reason if here else ""])
    print_table(["DATASET", "SENSITIVITY", "JURISDICTION", "LOCATION", "HERE", "STAGING", "WHY"], rows)


@terms_app.command("publish")
def terms_publish(
    version: str,
    file: Annotated[Path, typer.Option(help="the terms' text")],
    effective_on: Annotated[str, typer.Option(help="YYYY-MM-DD (default today)")] = "",
) -> None:
    """Publish a version of the acceptable-use terms (hub-admin)."""
    when = date.fromisoformat(effective_on) if effective_on else date.today()
    t = _client().publish_terms(m.TermsPublish(version=version, effective_on=when, text=file.read_text()))
    typer.echo(f"Published terms {t.version} effective {t.effective_on} ({t.digest})")


@terms_app.command("show")
def terms_show() -> None:
    t = _client().terms()
    status = "accepted" if t.accepted else "NOT accepted"
    typer.echo(f"Terms version {t.version}, in force since {t.effective_on} ({status})")
    typer.echo(t.text)


@terms_app.command("accept")
def terms_accept(version: Annotated[str | None, typer.Argument(help="default: the version in force")] = None) -> None:
    client = _client()
    t = client.accept_terms(version or client.terms().version)
    typer.echo(f"Accepted terms version {t.version}")


@audit_app.command("verify")
def audit_verify(
    head: Annotated[str | None, typer.Option(help="SEQ:HASH recorded earlier (detects truncation)")] = None,
    file: Annotated[Path | None, typer.Option(help="verify an exported file instead of the hub's log")] = None,
) -> None:
    """Check the hash chain: exit 1 naming the first bad entry if anything was edited, deleted or reordered."""
    expect = None
    if head:
        seq, _, digest = head.partition(":")
        expect = (int(seq), digest)
    if file is not None:
        r = verify(read_jsonl(file), expect)
        ok, checked, problem, head_now = r.ok, r.checked, r.problem, r.head
    else:
        v = _client().audit_verify(expect)
        ok, checked, problem = v.ok, v.checked, v.problem
        head_now = (v.head_seq, v.head_hash) if v.head_seq is not None and v.head_hash is not None else None
    if not ok:
        typer.echo(f"audit log FAILED verification after {checked} good entries: {problem}", err=True)
        raise typer.Exit(1)
    if head_now is None:
        typer.echo("audit log OK: empty")
    else:
        typer.echo(f"audit log OK: {checked} entries; head {head_now[0]}:{head_now[1]}")


@audit_app.command("export")
def audit_export(out: Annotated[Path, typer.Option("--out", "-o", help="JSON lines file to write")]) -> None:
    """Write the whole log as JSON lines; prints the head to keep outside the hub."""
    data = _client().audit_export()
    out.write_bytes(data)
    entries = read_jsonl(out)
    head = f"{entries[-1].seq}:{entries[-1].hash}" if entries else "none"
    typer.echo(f"Wrote {len(entries)} entries to {out}; head {head}")


@audit_app.command("list")
def audit_list(
    since_seq: Annotated[int, typer.Option(help="entries after this seq")] = 0, as_json: JsonOpt = False
) -> None:
    """Audit entries (hub-admins and reviewers)."""
    items = _client().audit_entries(since_seq)
    if as_json:
        typer.echo(json.dumps([e.model_dump() for e in items], indent=2))
        return
    rows = [[str(e.seq), _when(e.time_s), e.actor, e.action, e.subject, e.reason[:80]] for e in items]
    print_table(["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "REASON"], rows)


def register(app: typer.Typer) -> None:
    """Add the governance commands to the ``steppe`` app."""
    app.add_typer(proposal_app, name="proposal")
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(terms_app, name="terms")
    app.add_typer(audit_app, name="audit")
