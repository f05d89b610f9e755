"""Slurm-grade listings through the ``steppe`` CLI, in process (``clihub``): ``queue`` with squeue's
filters, ``-o`` formats, ``--start`` and ``-i``; ``history`` with sacct's times and ``--format``; ``cancel``
that acts on every valid id and takes scancel's filters; ``show`` as ``scontrol show job``; one JSON shape
for a job's reason; one-line errors; ``--version``, examples in the help, help at 80 columns."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from clihub import CliHub, cli_hub

from steppe.cli import hub_commands
from steppe.client.timespec import parse_lifetime, parse_when

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliHub]:
    with cli_hub(tmp_path, monkeypatch) as hub:
        yield hub


@pytest.fixture
def busy(h: CliHub) -> tuple[CliHub, dict[str, int]]:
    """alice runs ``big`` (all 4 GPUs); alice's ``sweep`` and carol's ``eval`` wait (Resources); bob's waits."""
    jobs = {"big": h.submit("alice", gpus=4, name="big")}
    h.wait(jobs["big"], "RUNNING")
    jobs["sweep"] = h.submit("alice", gpus=2, name="sweep")
    jobs["eval"] = h.submit("carol", gpus=1, name="eval")
    jobs["bob"] = h.submit("bob", gpus=1, name="bobs")
    for job_id in jobs.values():
        h.queued(job_id)
    return h, jobs


def _ids(text: str) -> list[int]:
    return [int(line.split()[0]) for line in text.splitlines()[1:] if line.strip()]


def test_queue_filters_by_user_state_job_and_project(busy: tuple[CliHub, dict[str, int]]) -> None:
    h, jobs = busy
    assert _ids(h.steppe("alice", "queue").out) == [jobs["big"], jobs["sweep"], jobs["eval"]]  # kaznu only
    assert _ids(h.steppe("alice", "queue", "-u", "alice").out) == [jobs["big"], jobs["sweep"]]
    assert _ids(h.steppe("alice", "queue", "-u", "carol,alice", "-t", "PD").out) == [jobs["sweep"], jobs["eval"]]
    assert _ids(h.steppe("alice", "queue", "--states", "R").out) == [jobs["big"]]
    assert _ids(h.steppe("alice", "queue", "-t", "running,pending").out) == [jobs["big"], jobs["sweep"], jobs["eval"]]
    assert _ids(h.steppe("alice", "queue", "-t", "CD").out) == []
    assert _ids(h.steppe("alice", "queue", "-j", f"{jobs['eval']},{jobs['big']}").out) == [jobs["big"], jobs["eval"]]
    assert _ids(h.steppe("alice", "queue", "-A", "kaznu/nlp", "--me").out) == [jobs["big"], jobs["sweep"]]
    assert _ids(h.steppe("bob", "queue", "-u", "alice").out) == []  # another organisation's jobs stay hidden
    assert _ids(h.steppe("root", "queue", "-u", "bob").out) == [jobs["bob"]]
    as_json = json.loads(h.steppe("alice", "queue", "-t", "PD", "-u", "alice", "--json").out)
    assert [j["id"] for j in as_json] == [jobs["sweep"]]
    bad = h.steppe("alice", "queue", "-t", "XX")
    assert bad.code == 1 and bad.err.count("\n") == 1
    assert "state: unknown state 'XX'" in bad.err and "PENDING (PD)" in bad.err and "e.g. PD,R" in bad.err


def test_queue_format_start_and_iterate(busy: tuple[CliHub, dict[str, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    h, jobs = busy
    fmt = "%.6i %j %u %a %T %t %M %l %D %b %R %S"
    out = h.steppe("alice", "queue", "-u", "alice", "-o", fmt).out.splitlines()
    assert out[0].split() == ["JOBID", "NAME", "USER", "ACCOUNT", "STATE", "ST", "TIME", "TIME_LIMIT", "NODES",
                              "TRES_PER_NODE", "NODELIST(REASON)", "START_TIME"]  # fmt: skip
    assert out[0].startswith(" JOBID") and out[1].startswith(f"{jobs['big']:>6} big")
    running, pending = out[1].split(), out[2].split()
    assert running[2:8] == ["alice", "kaznu/nlp", "RUNNING", "R", running[6], "01:00:00"]
    node = h.hub.fleet.node_names[0]
    assert running[8:11] == ["1", "gres/gpu:H100:4", node] and re.fullmatch(ISO, running[11])
    assert pending[4:6] == ["PENDING", "PD"] and pending[9] == "gres/gpu:2" and pending[10] == "(Resources)"
    assert re.fullmatch(ISO, pending[11])  # the estimated start: when big's hour is up
    narrow = h.steppe("alice", "queue", "-o", "%.3j|%5t|%%").out.splitlines()
    assert narrow[:2] == ["NAM|ST   |%", "big|R    |%"]
    bad = h.steppe("alice", "queue", "-o", "%i %Z")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "--format: unknown field %Z" in bad.err

    start = h.steppe("alice", "queue", "--start").out.splitlines()
    assert start[0].split()[:6] == ["JOBID", "ACCOUNT", "NAME", "USER", "ST", "START_TIME"]
    assert _ids("\n".join(start)) == [jobs["sweep"], jobs["eval"]]  # pending only, by estimated start
    assert all(re.fullmatch(ISO, line.split()[5]) for line in start[1:])

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(hub_commands, "_pause", sleep)
    it = h.steppe("alice", "queue", "-i", "5", "-u", "carol")
    assert it.code == 0 and sleeps == [5.0, 5.0]
    assert it.out.count("JOBID") == 2 and it.out.count(" eval ") == 2  # printed again every 5 s, until Ctrl-C


def test_cancel_acts_on_every_valid_id_and_reports_each_bad_one(busy: tuple[CliHub, dict[str, int]]) -> None:
    h, jobs = busy
    sweep2 = h.submit("alice", gpus=1, name="sweep")
    run = h.steppe("alice", "cancel", str(jobs["sweep"]), "999999", "x1", str(sweep2))
    assert run.code == 1 and run.out == ""
    assert run.err.splitlines() == ["error: job x1: not a job id (give numbers, e.g. steppe cancel 42 43)",
                                    "error: job 999999 not found"]  # fmt: skip
    assert h.wait(jobs["sweep"], "CANCELLED") and h.wait(sweep2, "CANCELLED")  # the one after the bad id too
    again = h.steppe("alice", "cancel", str(jobs["sweep"]))
    assert again.code == 1 and f"job {jobs['sweep']} has already ended" in again.err
    other = h.steppe("alice", "cancel", str(jobs["eval"]))  # carol's: an org-admin's or hers to cancel
    assert other.code == 1 and "only the job's owner or an org-admin" in other.err


def test_cancel_filters_cancel_what_the_caller_may_cancel(busy: tuple[CliHub, dict[str, int]]) -> None:
    h, jobs = busy
    mine = h.steppe("alice", "cancel", "-A", "kaznu/nlp", "-t", "PD")  # a member: her own jobs only
    assert mine.code == 0, mine.err
    assert h.wait(jobs["sweep"], "CANCELLED")
    assert {h.client("root").get_job(j).state for j in (jobs["big"], jobs["eval"])} == {"RUNNING", "PENDING"}
    named = h.submit("carol", gpus=1, name="sweep")
    h.queued(named)
    assert h.steppe("olga", "cancel", "-n", "sweep", "--state", "PENDING").code == 0  # an org-admin: the org's
    assert h.wait(named, "CANCELLED") and h.client("root").get_job(jobs["eval"]).state == "PENDING"
    assert h.steppe("olga", "cancel", "-u", "carol").code == 0
    assert h.wait(jobs["eval"], "CANCELLED")
    assert h.steppe("olga", "cancel", "-u", "bob").code == 0  # another organisation's: not even seen
    assert h.client("root").get_job(jobs["bob"]).state == "PENDING"
    none = h.steppe("alice", "cancel")
    assert none.code == 2 and "give job ids or a filter" in none.err and none.err.count("\n") == 1


def test_history_takes_sacct_times_ids_and_fields(busy: tuple[CliHub, dict[str, int]]) -> None:
    h, jobs = busy
    h.hub.loop.executor.end(jobs["big"], 3, now=time.time())  # type: ignore[attr-defined]
    h.hub.loop.wake()
    h.wait(jobs["big"], "FAILED")
    kaznu = [jobs["big"], jobs["sweep"], jobs["eval"]]
    an_hour_ago = (datetime.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    for start in ("now-1hour", "now-30minutes", "now-2days", "today", "yesterday", an_hour_ago):
        run = h.steppe("alice", "history", "-S", start)
        assert run.code == 0, (start, run.err)
        assert _ids("\n".join(run.out.splitlines()[1:])) == kaznu, start
    assert _ids("\n".join(h.steppe("alice", "history", "-E", "now-1hour").out.splitlines()[1:])) == []
    assert _ids("\n".join(h.steppe("alice", "history", "-S", "now+1hour").out.splitlines()[1:])) == []
    out = h.steppe("alice", "history", "-j", str(jobs["big"]), "--format", "JobID,JobName,State,ExitCode,Elapsed")
    assert out.out.splitlines()[0].split() == ["JobID", "JobName", "State", "ExitCode", "Elapsed"]
    assert set(out.out.splitlines()[1].replace(" ", "")) == {"-"}  # sacct's line of dashes
    assert out.out.splitlines()[2].split()[:4] == [str(jobs["big"]), "big", "FAILED", "3:0"]
    h.wait(jobs["eval"], "RUNNING")  # big's GPUs were freed
    pair = f"{jobs['big']},{jobs['eval']}"
    assert _ids("\n".join(h.steppe("alice", "history", "-s", "F", "-j", pair).out.splitlines()[1:])) == [jobs["big"]]
    assert _ids("\n".join(h.steppe("alice", "history", "-s", "R,F", "-j", pair).out.splitlines()[1:])) == [
        jobs["big"], jobs["eval"]]  # fmt: skip
    cut = h.steppe("alice", "history", "-j", str(jobs["sweep"]), "-o", "jobid,jobname%3").out.splitlines()
    assert cut[0].split() == ["JobID", "Job"] and cut[2].split()[1] == "sw+"  # sacct marks a cut value with +
    for args, field in ((("-S", "soon"), "--starttime"), (("-E", "now-1fortnight"), "--endtime"),
                        (("--format", "JobID,Colour"), "--format")):  # fmt: skip
        bad = h.steppe("alice", "history", *args)
        assert bad.code == 2 and bad.err.count("\n") == 1 and f"error: {field}: " in bad.err and "(e.g. " in bad.err


def test_show_prints_scontrol_key_values_with_iso_times(busy: tuple[CliHub, dict[str, int]]) -> None:
    h, jobs = busy
    text = h.steppe("alice", "show", str(jobs["sweep"])).out
    lines = text.splitlines()
    assert lines[0] == f"JobId={jobs['sweep']} JobName=sweep"
    fields = dict(kv.split("=", 1) for line in lines[1:] for kv in line.split() if "=" in kv)
    assert (fields["UserId"], fields["Account"], fields["JobState"], fields["Reason"]) == (
        "alice", "kaznu/nlp", "PENDING", "Resources")  # fmt: skip
    assert (fields["TimeLimit"], fields["NumGPUs"], fields["TRES"], fields["NodeList"]) == (
        "01:00:00", "2", "gres/gpu=2", "(null)")  # fmt: skip
    assert re.fullmatch(ISO, fields["SubmitTime"]) and re.fullmatch(ISO, fields["StartTime"])  # the estimate
    assert not re.search(r"\d{9,}\.\d", text) and "=None" not in text and "[" not in text  # no epochs, no reprs
    big = dict(kv.split("=", 1) for line in h.steppe("alice", "show", str(jobs["big"])).out.splitlines()
               for kv in line.split() if "=" in kv)  # fmt: skip
    assert (big["JobState"], big["Reason"], big["NodeList"], big["TRES"]) == (
        "RUNNING", "None", h.hub.fleet.node_names[0], "gres/gpu:H100=4")  # fmt: skip
    as_json = json.loads(h.steppe("alice", "show", str(jobs["big"]), "--json").out)
    assert as_json["id"] == jobs["big"] and as_json["reason"] is None


def test_a_jobs_reason_is_null_in_every_response(busy: tuple[CliHub, dict[str, int]]) -> None:
    h, jobs = busy
    auth = {"Authorization": f"Bearer {h.tokens['alice']}"}
    submitted = h.http.post("/api/v1/jobs", json={"project": "kaznu/nlp", "argv": ["true"]}, headers=auth).json()
    assert submitted["reason"] == "Priority"
    big = jobs["big"]
    queue = {j["id"]: j for j in h.http.get("/api/v1/queue", headers=auth).json()["items"]}
    one = h.http.get(f"/api/v1/jobs/{big}", headers=auth).json()
    listed = {j["id"]: j for j in h.http.get("/api/v1/jobs", headers=auth).json()["items"]}
    assert queue[big]["reason"] is None and one["reason"] is None and listed[big]["reason"] is None
    assert "None" not in json.dumps([queue[big], one, listed[big]])
    h.hub.loop.executor.end(big, 0, now=time.time())  # type: ignore[attr-defined]
    h.hub.loop.wake()
    h.wait(big, "COMPLETED")
    done = h.http.get(f"/api/v1/jobs/{big}", headers=auth).json()
    history = json.loads(h.steppe("alice", "history", "-j", str(big), "--json").out)
    assert done["reason"] is None and history[0]["reason"] is None
    assert all(e["reason"] not in (None, "None") for e in done["events"])  # a transition always says why
    assert queue[jobs["sweep"]]["reason"] == "Resources"


def test_token_lifetimes_in_days_hours_minutes_weeks(h: CliHub) -> None:
    for text, seconds in (("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 14 * 86400)):
        before = time.time()
        run = h.steppe("root", "admin", "token", "create", "alice", "--name", text, "--expires", text)
        assert run.code == 0, run.err
        token = next(t for t in h.client("root").list_tokens("alice") if t.name == text)
        assert token.expires_s is not None and abs(token.expires_s - before - seconds) < 5
    bad = h.steppe("root", "admin", "token", "create", "alice", "--expires", "30x")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "--expires: unknown unit 'x'" in bad.err


def test_errors_are_one_line_with_the_field_the_form_and_an_example(h: CliHub) -> None:
    for args, expected in (
        (("show", "abc"), "JOB_ID: must be an integer, not a string (got 'abc')"),
        (("queue", "--bogus"), "No such option: --bogus (see steppe queue --help)"),
        (("admin", "org", "create", "Bad_Name", "--country", "KZ"),
         "name: must be 1-63 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit"),
        (("admin", "project", "create", "kaznu/Bad"), "lowercase letters"),
        (("history", "-j", "4x"), "jobs: '4x' is not a job id; give numbers separated by commas (e.g. 42,43)"),
        (("queue", "-o", "[a-z0-9][a-z0-9_.-]{0,62} %Z"), "unknown field %Z in '[a-z0-9][a-z0-9_.-]{0,62} %Z'"),
    ):  # fmt: skip
        run = h.steppe("root", *args)
        assert run.code in (1, 2) and run.err.startswith("error: ") and run.err.count("\n") == 1, (args, run.err)
        assert expected in run.err and "pydantic" not in run.err, (args, run.err)  # markup is printed as it is
    h.submit("alice", name="[bold]odd[/bold]")
    assert "[bold]odd[/bold]" in h.steppe("alice", "history").out
    h.client("root").create_token("alice", "[red]laptop")
    assert "[red]laptop" in h.steppe("root", "admin", "token", "list", "alice").out  # a table cell is no markup


def test_version_examples_and_help_at_80_columns(h: CliHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from steppe import __version__

    assert h.steppe("alice", "--version").out == f"steppe {__version__}\n"
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "dumb")
    admin = [("admin", group, verb) for group, verbs in (("org", "create list share"), ("project", "create list"),
             ("user", "create list remove"), ("token", "create list revoke"), ("alloc", "create list"))
             for verb in verbs.split()]  # fmt: skip
    for command in [("serve",), ("login",), ("submit",), ("queue",), ("logs",), ("cancel",), ("history",), ("show",),
                    ("nodes",), ("simulate",), ("compare",), ("sweep",), ("admin", "usage"), *admin]:  # fmt: skip
        run = h.steppe("alice", *command, "--help")
        assert run.code == 0 and "Example" in run.out, command
        assert max(len(line) for line in run.out.splitlines()) <= 80, command


def test_times_and_lifetimes_as_slurm_users_type_them() -> None:
    now = datetime(2026, 11, 30, 15, 36, 50)
    cases = {"now": now, "now-1hour": now - timedelta(hours=1), "now-30minutes": now - timedelta(minutes=30),
             "now-2days": now - timedelta(days=2), "now+90": now + timedelta(seconds=90),
             "now-1h": now - timedelta(hours=1), "NOW-3weeks": now - timedelta(weeks=3),
             "today": datetime(2026, 11, 30), "yesterday": datetime(2026, 11, 29), "midnight": datetime(2026, 11, 30),
             "2026-11-30": datetime(2026, 11, 30), "2026-11-30T15:00": datetime(2026, 11, 30, 15),
             "2026-11-30 15:00:30": datetime(2026, 11, 30, 15, 0, 30)}  # fmt: skip
    for text, expected in cases.items():
        assert parse_when(text, now) == expected.timestamp(), text
    for bad in ("soon", "now-1fortnight", "30/11/2026", ""):
        with pytest.raises(ValueError, match=r"e\.g\. "):
            parse_when(bad, now)
    assert [parse_lifetime(t) for t in ("45s", "90m", "12h", "30d", "2w", "30-00:00:00", "90")] == [
        45, 5400, 43200, 2592000, 1209600, 2592000, 5400]  # fmt: skip
    for bad in ("0d", "30x", "soon"):
        with pytest.raises(ValueError, match=r"e\.g\. "):
            parse_lifetime(bad)
