"""The live hub's commands: ``serve``, ``login``, Slurm-like job verbs and ``admin``.

Every command except ``serve`` talks to the hub through the SDK (``steppe.client``), which
finds the hub in ``STEPPE_URL``/``STEPPE_TOKEN`` or the file ``steppe login`` writes. Listings
take ``--json``. Exit codes: 0 success, 1 an error reported by the hub or in the input, 2 bad
usage.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from steppe.cli import listings
from steppe.cli.render import print_error, print_warning
from steppe.client import HubClient, HubError
from steppe.client import models as m
from steppe.client.config import save_config
from steppe.client.export import ExportError, export_env
from steppe.client.script import (
    DirectiveError,
    Directives,
    default_name,
    fill_name,
    is_script,
    parse_directives,
    read_script,
    set_option,
)
from steppe.client.timespec import parse_lifetime, parse_when
from steppe.core.arrays import parse_array
from steppe.core.dependency import format_dependency, parse_dependency
from steppe.core.units import parse_power, parse_time_limit

console = Console(width=None if sys.stdout.isatty() else 200)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-A", help="ORG/PROJECT")]
admin = typer.Typer(help="Manage organisations, projects, members, tokens and allocations.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations (tenants).", no_args_is_help=True)
project_app = typer.Typer(help="Projects of an organisation.", no_args_is_help=True)
user_app = typer.Typer(help="Members of an organisation.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
alloc_app = typer.Typer(help="GPU-hour allocations.", no_args_is_help=True)
for _name, _sub in (("org", org_app), ("project", project_app), ("user", user_app), ("token", token_app),
                    ("alloc", alloc_app)):  # fmt: skip
    admin.add_typer(_sub, name=_name)


def _client() -> HubClient:
    return HubClient.from_config()


def _when(t: float | None) -> str:
    return listings.when(t)


def _emit(items: list[BaseModel] | BaseModel, as_json: bool, columns: list[str], rows: list[list[str]]) -> None:
    if as_json:
        data = [i.model_dump() for i in items] if isinstance(items, list) else items.model_dump()
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # plain text: a name such as "[a-z]" is no markup
    console.print(table)


# -- serve and login --------------------------------------------------------------------------------------
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8642,
    data_dir: Annotated[Path, typer.Option(help="database, job outputs, admin token")] = Path("steppe-data"),
    db: Annotated[str | None, typer.Option(help="postgresql://... (default: SQLite in --data-dir)")] = None,
    policy: Annotated[str, typer.Option(help="scheduling policy")] = "easy-backfill",
    cluster: Annotated[str | None, typer.Option(help="cluster TOML or NODESxGPUS:TYPE instead of NVML")] = None,
    gpus: Annotated[int | None, typer.Option(help="declare N GPUs on this machine instead of NVML")] = None,
    gpu_type: Annotated[str, typer.Option(help="type of the declared GPUs")] = "GENERIC",
    grace: Annotated[float, typer.Option(help="seconds between SIGTERM and SIGKILL")] = 10.0,
    charge_interval: Annotated[float, typer.Option(help="seconds between usage charges")] = 10.0,
    require_allocation: Annotated[bool, typer.Option(help="hold jobs of projects without an allocation")] = False,
    public_metrics: Annotated[bool, typer.Option(help="serve /metrics without a token")] = False,
    reset_admin_token: Annotated[bool, typer.Option(help="write a new admin token")] = False,
    review_gate: Annotated[bool, typer.Option(help="hold jobs of projects without an approved AI-use review")] = True,
    site: Annotated[
        str, typer.Option(help="this hub's site: its site file (time zone, jurisdiction, energy) and topology entry")
    ] = "astana",
    clock_offset_days: Annotated[float, typer.Option(hidden=True, help="tests: shift the hub's calendar")] = 0.0,
    single_user: Annotated[bool, typer.Option(help="not root: run every job as this account (one person's hub)")] = (
        False
    ),
    uid_base: Annotated[int, typer.Option(help="jobs of hub user N run as uid BASE+N unless --accounts maps them")] = (
        200000
    ),
    accounts: Annotated[Path | None, typer.Option(help='TOML: [accounts] hub user = "unix account"')] = None,
    executor: Annotated[
        str,
        typer.Option(
            help="what runs the jobs: local (processes here), slurm (a Slurm cluster: --executor-opt "
            "conf=/etc/slurm/slurm.conf), ray (a Ray cluster: --executor-opt address=http://HEAD:8265) or mock "
            "(tests); see docs/executors.md"
        ),
    ] = "local",
    executor_opt: Annotated[
        list[str] | None,
        typer.Option(
            help="how to reach the engine, KEY=VALUE (repeatable); slurm: conf=/etc/slurm/slurm.conf, "
            "partition=gpu, poll_s=1, timeout_s=30, gpu_type=lower|same|none, bin_dir=/usr/bin"
        ),
    ] = None,
    power_cap: Annotated[
        str | None, typer.Option(help="facility cap to schedule under, e.g. 500kW (--site's windows keep their ratio)")
    ] = None,
    cap_floor: Annotated[float, typer.Option(help="lowest per-job GPU cap under --power-cap, fraction of TDP")] = 0.6,
    gpus_from_engine: Annotated[
        bool,
        typer.Option(
            "--gpus-from-engine",
            help="read the nodes and GPUs from the engine at start (--executor slurm or ray) instead of "
            "declaring them; GPUs the engine leaves untyped are --gpu-type",
        ),
    ] = False,
    engine_wait: Annotated[
        float, typer.Option(help="with --gpus-from-engine: the longest wait in seconds for the engine to answer")
    ] = 30.0,
    log_format: Annotated[
        str, typer.Option(help="server log: text, or json (one object per line: job transitions, admin actions)")
    ] = "text",
) -> None:
    """Run the hub: API, scheduler loop and its executor (local processes, or a Slurm cluster).

    Example: steppe serve --gpus 4 --gpu-type H100 --data-dir /srv/steppe
    """
    from steppe.api.hub import HubSettings
    from steppe.api.server import serve as run

    power_cap_w = None
    if power_cap is not None:
        try:
            power_cap_w = parse_power(power_cap)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--power-cap") from None
        if power_cap_w <= 0:
            raise typer.BadParameter(f"must be positive, got {power_cap}", param_hint="--power-cap")
    if not 0.4 <= cap_floor <= 1.0:
        raise typer.BadParameter(f"must be within 0.4-1.0 of TDP, got {cap_floor:g}", param_hint="--cap-floor")
    if gpus_from_engine and (gpus is not None or cluster is not None):
        raise typer.BadParameter("reads the nodes from the engine: give it without --gpus or --cluster",
                                 param_hint="--gpus-from-engine")  # fmt: skip
    if engine_wait <= 0:
        raise typer.BadParameter(f"must be positive seconds, got {engine_wait:g}", param_hint="--engine-wait")
    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"text or json, got {log_format!r}", param_hint="--log-format")
    options: dict[str, str] = {}
    for item in executor_opt or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(
                f"expected KEY=VALUE, got {item!r}; e.g. conf=/etc/slurm/slurm.conf", param_hint="--executor-opt"
            )
        options[key.strip()] = value
    settings = HubSettings(
        data_dir=data_dir.resolve(), db_url=db, policy=policy, cluster=cluster, gpus=gpus, gpu_type=gpu_type,
        grace_s=grace, charge_interval_s=charge_interval, require_allocation=require_allocation,
        public_metrics=public_metrics, review_gate=review_gate, site=site, clock_offset_days=clock_offset_days,
        single_user=single_user, uid_base=uid_base, accounts_file=accounts, executor=executor,
        executor_options=tuple(sorted(options.items())),
        power_cap_w=power_cap_w, cap_floor=cap_floor, gpus_from_engine=gpus_from_engine, engine_wait_s=engine_wait,
    )  # fmt: skip
    run(settings, host, port, reset_admin_token, print, log_format)


def login(
    url: Annotated[str, typer.Option(help="the hub's URL")] = "http://127.0.0.1:8642",
    token_file: Annotated[Path | None, typer.Option(help="read the token from a file (default: stdin)")] = None,
) -> None:
    """Check a token against a hub and save both for later commands.

    The token is read from stdin (a hidden prompt on a terminal) or ``--token-file``, never from
    the command line, where every user of the machine could read it in the process list.

    Example: steppe login --url http://hub:8642 --token-file ~/.steppe-token
    """
    if token_file is not None:
        secret = token_file.read_text().strip()
    elif sys.stdin.isatty():
        secret = typer.prompt("API token", hide_input=True).strip()
    else:
        secret = sys.stdin.readline().strip()
    if not secret:
        raise typer.BadParameter("no token: give it on stdin or with --token-file", param_hint="token")
    who = HubClient(url, secret).whoami()
    path = save_config(url, secret)
    typer.echo(f"Logged in to {url} as {who.name} ({who.role}{', ' + who.org if who.org else ''}); saved {path}")


# -- jobs -------------------------------------------------------------------------------------------------
def submit(
    command: Annotated[list[str] | None, typer.Argument(help="SCRIPT, or -- COMMAND ARGS...")] = None,
    project: ProjectOpt = None,
    gpus: Annotated[int | None, typer.Option("--gpus", "-G", help="number of GPUs")] = None,
    gpu_type: Annotated[str | None, typer.Option(help="GPU type, e.g. H100")] = None,
    gres: Annotated[str | None, typer.Option(help="gpu:N or gpu:TYPE:N")] = None,
    time_limit: Annotated[str | None, typer.Option("--time", "-t", help="D-HH:MM:SS, HH:MM:SS, MM...")] = None,
    job_name: Annotated[str | None, typer.Option("--job-name", "-J")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="stdout file (%j = job id)")] = None,
    error: Annotated[str | None, typer.Option("--error", "-e", help="stderr file (%j = job id)")] = None,
    chdir: Annotated[
        str | None, typer.Option("--chdir", "-D", help="working directory on the hub (default: the job's own)")
    ] = None,
    qos: Annotated[str | None, typer.Option("--qos", "-q")] = None,
    wrap: Annotated[str | None, typer.Option(help="run this shell command line")] = None,
    export: Annotated[
        str | None, typer.Option("--export", help="ALL (default), NONE, or VAR1,VAR=value,... (as sbatch)")
    ] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE, repeatable")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="a dataset it reads, repeatable")] = None,
    dependency: Annotated[
        str | None, typer.Option("--dependency", "-d", help="afterok|afterany|afternotok|after:ID[:ID],singleton")
    ] = None,
    begin: Annotated[str | None, typer.Option("--begin", "-b", help="not before: now+1hour, 2026-12-01T18:00")] = None,
    array: Annotated[str | None, typer.Option("--array", "-a", help="tasks and throttle, e.g. 0-99%8")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="resubmitting with the same key is a no-op")] = None,
    parsable: Annotated[bool, typer.Option(help="print only the job id")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Submit a job (like sbatch): a script with #SBATCH or #STEPPE lines, a command after --, or --wrap.

    Your environment goes with the job (--export=ALL, as sbatch); sbatch options
    Steppe does not support yet are named in one warning.

    Example: steppe submit -A kaznu/nlp -G 2 -t 2:00:00 -- python train.py
    """
    args = list(command or [])
    directives = Directives()
    script = argv = None
    if wrap is not None:
        argv = ["/bin/sh", "-c", wrap]
    elif len(args) == 1 and "--" not in sys.argv[1:] and is_script(args[0]):
        script = read_script(args[0])
        try:
            directives = parse_directives(script)
        except DirectiveError as exc:
            raise typer.BadParameter(str(exc), param_hint="SCRIPT") from None
    elif args:
        argv = args
    else:
        raise typer.BadParameter("give a script, a command after --, or --wrap", param_hint="COMMAND")
    given = {"project": project, "gpus": gpus, "gpu_type": gpu_type, "gres": gres, "time": time_limit,
             "job_name": job_name, "output": output, "error": error, "chdir": chdir, "qos": qos,
             "export": export, "dependency": dependency, "begin": begin, "array": array}  # fmt: skip
    opts = dict(directives.options)  # the script's, then the command line's over them
    for key, value in given.items():
        if value is not None:
            try:
                set_option(opts, key, str(value))
            except DirectiveError as exc:
                raise typer.BadParameter(str(exc), param_hint=f"--{key.replace('_', '-')}") from None
    body: dict[str, Any] = {"argv": argv, "script": script, "datasets": list(dataset or []), "submit_dir": _cwd()}
    name = opts.get("job_name", default_name(args[0]) if script is not None else "")
    try:
        body.update(
            project=opts.get("project"), gpus=int(opts.get("gpus", 1)), gpu_type=opts.get("gpu_type"), name=name,
            output=fill_name(opts.get("output"), name), error=fill_name(opts.get("error"), name),
            workdir=opts.get("chdir"), qos=opts.get("qos", "normal"),
        )  # fmt: skip
        if "time" in opts:
            body["walltime_s"] = parse_time_limit(opts["time"])
        if "dependency" in opts:
            body["dependency"] = format_dependency(parse_dependency(opts["dependency"]))
        if "begin" in opts:
            body["begin_s"] = parse_when(opts["begin"])
        if "array" in opts:
            parse_array(opts["array"])
            body["array"] = opts["array"]
    except ValueError as exc:
        print_error(f"bad value: {exc}")  # one line, exit 2 (bad usage)
        raise typer.Exit(2) from None
    if not body["project"]:
        raise typer.BadParameter("which project? give --project ORG/PROJECT or #SBATCH -A", param_hint="--project")
    explicit: dict[str, str] = {}
    for item in env or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--env")
        explicit[key] = value
    try:
        exported = export_env(opts.get("export", "ALL"), os.environ, explicit, m.command_bytes(argv, {}, script))
    except ExportError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--export: "), param_hint="--export") from None
    body["env"] = exported.env
    if directives.unsupported:
        print_warning(f"not supported yet, ignored: {', '.join(directives.unsupported)} (the job is submitted "
                      "without them)")  # fmt: skip
    if exported.dropped:
        print_warning(exported.note(), label="note")
    job = _client().submit(m.JobSubmit(**{k: v for k, v in body.items() if v is not None}), idempotency_key)
    if as_json:
        typer.echo(job.model_dump_json(indent=2))
    else:
        typer.echo(str(job.id) if parsable else f"Submitted batch job {job.id}")


def _cwd() -> str | None:
    """The directory ``submit`` runs in (the job's ``SLURM_SUBMIT_DIR``), if it still exists."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _print_lines(lines: list[str]) -> None:
    typer.echo("\n".join(lines))


def _usage(param: str, exc: ValueError) -> typer.BadParameter:
    return typer.BadParameter(str(exc), param_hint=param)


def queue(
    project: Annotated[
        str | None, typer.Option("--account", "--project", "-A", help="projects, e.g. kaznu/nlp,kaznu/cv")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="users, e.g. alice,bob")] = None,
    states: Annotated[
        str | None, typer.Option("--states", "-t", help="states or codes PD,R,CD,F,CA,TO (comma list)")
    ] = None,
    jobs: Annotated[str | None, typer.Option("--jobs", "-j", help="job ids, e.g. 42,43")] = None,
    me: Annotated[bool, typer.Option("--me", help="only my jobs")] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", "-o", help="squeue format, e.g. '%.10i %j %u %T %M %R' (see below)")
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="pending jobs by estimated start time")] = False,
    iterate: Annotated[
        float | None, typer.Option("--iterate", "-i", min=0.1, help="reprint every N seconds until Ctrl-C")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Running and pending jobs (like squeue), with pending reasons and estimated starts.

    Format letters (-o): %i id, %j name, %u user, %a project, %T state,
    %t state code, %M time used, %l time limit, %L time left, %D nodes,
    %G GPUs, %b gres, %q QOS, %R nodes or (reason), %r reason, %N nodes,
    %S start (estimated when pending), %V submit, %e end, %P site, %% a '%'.
    %.10i: 10 wide, right-justified; %10i: 10 wide; %i: as wide as needed.

    Example: steppe queue -u alice -t PD,R -o "%.8i %.10j %.2t %.10M %R"
    """
    default = listings.QUEUE_START if start else listings.QUEUE_DEFAULT
    try:
        parts = listings.parse_squeue(fmt or default)
    except ValueError as exc:
        raise _usage("--format", exc) from None
    sited = parts if fmt else listings.parse_squeue(listings.with_site(default))  # a hub at several sites
    client = _client()
    if me:
        user = client.whoami().name
    if start:
        states = "PENDING"
    while True:
        items = list(client.iter_queue(project=project, user=user, state=states, jobs=jobs))
        if start:
            items.sort(key=lambda j: (j.est_start_s is None, j.est_start_s or 0.0, j.position or 0))
        if as_json:
            typer.echo(json.dumps([j.model_dump() for j in items], indent=2))
        else:
            if iterate is not None:
                typer.echo(datetime.now().strftime("%a %b %d %H:%M:%S %Y"))
            _print_lines(listings.render(sited if any(j.site for j in items) else parts, items))
        if iterate is None:
            return
        try:
            _pause(iterate)
        except KeyboardInterrupt:
            return
        typer.echo("")


def logs(
    job_id: int,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until the job ends")] = False,
    stderr: Annotated[bool, typer.Option("--stderr", help="the job's stderr instead of stdout")] = False,
) -> None:
    """Print a job's output.

    Example: steppe logs -f 42 ; steppe logs --stderr 42
    """
    client = _client()
    stream = "stderr" if stderr else "stdout"
    if follow:
        for text in client.follow_logs(job_id, stream):
            sys.stdout.write(text)
            sys.stdout.flush()
        return
    offset = 0
    while True:
        chunk = client.logs(job_id, stream, offset)
        sys.stdout.write(chunk.data)
        if chunk.next_offset == offset or not chunk.data:
            break
        offset = chunk.next_offset


def cancel(
    job_ids: Annotated[list[str] | None, typer.Argument(help="job ids")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="only jobs of these users")] = None,
    project: Annotated[str | None, typer.Option("--account", "--project", "-A", help="only jobs of these projects")] = (
        None
    ),
    state: Annotated[str | None, typer.Option("--state", "-t", help="only jobs in these states (PD, R)")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="only jobs with this name")] = None,
) -> None:
    """Cancel jobs (like scancel; prints nothing on success).

    Every valid id is cancelled; each one that cannot be is reported in one
    line, and the exit status is then 1. With filters, the queued jobs that
    match all of them and that you may cancel are cancelled: your own, or
    your organisation's if you are its org-admin.

    Example: steppe cancel 42 43 ; steppe cancel -u alice -t PD -n sweep
    """
    client = _client()
    failed = 0
    wanted: list[int] = []
    for item in job_ids or []:
        if item.isdigit() and int(item) > 0:
            wanted.append(int(item))
        else:
            print_error(f"job {item}: not a job id (give numbers, e.g. steppe cancel 42 43)")
            failed += 1
    if any(v is not None for v in (user, project, state, name)):
        who = client.whoami()
        if who.role == "member" and user is None:
            user = who.name  # a member may cancel only their own jobs
        ids = ",".join(map(str, wanted)) if wanted else None
        try:
            chosen = [j for j in client.iter_queue(project=project, user=user, state=state, jobs=ids)
                      if name is None or j.name == name]  # fmt: skip
        except HubError as exc:
            print_error(str(exc))
            raise typer.Exit(1) from None
        wanted = [j.id for j in chosen]
    elif not job_ids:
        raise typer.BadParameter("give job ids or a filter (-u, -A, -t, -n); e.g. steppe cancel 42", param_hint="JOB")
    for job_id in dict.fromkeys(wanted):
        try:
            client.cancel(job_id)
        except HubError as exc:
            detail = exc.problem.detail or str(exc)
            print_error(detail if f"job {job_id} " in detail else f"job {job_id}: {detail}")
            failed += 1
    if failed:
        raise typer.Exit(1)


def _when_option(param: str, text: str | None) -> float | None:
    try:
        return parse_when(text) if text is not None else None
    except ValueError as exc:
        raise _usage(param, exc) from None


def history(
    project: Annotated[str | None, typer.Option("--account", "--project", "-A", help="ORG/PROJECT")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    state: Annotated[str | None, typer.Option("--state", "-s", help="states or codes, e.g. CD,F")] = None,
    jobs: Annotated[str | None, typer.Option("--jobs", "-j", help="job ids, e.g. 42,43")] = None,
    starttime: Annotated[
        str | None, typer.Option("--starttime", "-S", help="submitted at or after: now-1hour, today, 2026-11-30")
    ] = None,
    endtime: Annotated[
        str | None, typer.Option("--endtime", "-E", help="submitted before: now, yesterday, 2026-11-30T15:00")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-o", help="fields, e.g. JobID,JobName,State,ExitCode,Elapsed")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Jobs and how they ended (like sacct), selected by submit time.

    Times (-S, -E; local): now, now-1hour, now-30minutes, now-2days, today,
    yesterday, 2026-11-30, 2026-11-30T15:00.
    Fields (--format): JobID, JobName, Account, User, State, ExitCode,
    Elapsed, Timelimit, Submit, Start, End, AllocTRES, NGPUS, NodeList,
    Reason, QOS; JobName%30 sets a width.

    Example: steppe history -S now-1hour -s F,TO -o JobID,JobName,State,ExitCode
    """
    try:
        parts = listings.parse_sacct(fmt or listings.HISTORY_DEFAULT)
    except ValueError as exc:
        raise _usage("--format", exc) from None
    since, until = _when_option("--starttime", starttime), _when_option("--endtime", endtime)
    items = list(_client().iter_jobs(project=project, user=user, state=state, jobs=jobs, since_s=since, until_s=until))
    if as_json:
        typer.echo(json.dumps([j.model_dump() for j in items], indent=2))
    else:
        _print_lines(listings.render(listings.spaced(parts), items, dashes=True, mark="+"))


def show(job_id: int, as_json: JsonOpt = False) -> None:
    """One job in full (like scontrol show job).

    Key=Value lines with local ISO times, then its transitions.

    Example: steppe show 42 ; steppe show 42 --json
    """
    job = _client().get_job(job_id)
    if as_json:
        typer.echo(job.model_dump_json(indent=2))
        return
    _print_lines(listings.show_lines(job))


def nodes(as_json: JsonOpt = False) -> None:
    """Nodes, their state and free GPUs (like sinfo).

    STATE: idle, mixed, allocated, drain (drained, empty), draining (drained, jobs
    still running), down (the engine no longer offers it); REASON: why drained.

    Example: steppe nodes
    """
    items = _client().nodes()
    rows = [[n.name, n.state, n.gpu_type, str(n.gpus), str(n.free), str(n.others), ",".join(map(str, n.jobs))]
            for n in items]  # fmt: skip
    header = ["NODE", "STATE", "GPU_TYPE", "GPUS", "FREE", "OTHERS", "JOBS"]
    if any(n.reason for n in items):  # drained nodes: why (as sinfo -R)
        header, rows = [*header, "REASON"], [[*row, n.reason or ""] for n, row in zip(items, rows, strict=True)]
    if any(n.site for n in items):  # a hub at several sites: where each node is
        header, rows = ["SITE", *header], [[n.site or "", *row] for n, row in zip(items, rows, strict=True)]
    _emit(list(items), as_json, header, rows)


# -- admin ------------------------------------------------------------------------------------------------
@org_app.command("create")
def org_create(name: str, country: Annotated[str, typer.Option(help="ISO 3166 code, e.g. KZ")]) -> None:
    """Create an organisation (hub-admin).

    Example: steppe admin org create kaznu --country KZ
    """
    org = _client().create_org(name, country.upper())
    typer.echo(f"Created organisation {org.name} ({org.country})")


@org_app.command("list")
def org_list(as_json: JsonOpt = False) -> None:
    """Organisations with their fair-share weight and GPU quota.

    Example: steppe admin org list
    """
    items = _client().list_orgs()
    rows = [[o.name, o.country, _when(o.created_s), "-" if o.fairshare_weight is None else f"{o.fairshare_weight:g}",
             "-" if o.gpu_quota is None else str(o.gpu_quota)] for o in items]  # fmt: skip
    _emit(list(items), as_json, ["ORG", "COUNTRY", "CREATED", "WEIGHT", "GPU QUOTA"], rows)


@org_app.command("share")
def org_share(
    name: str,
    reason: Annotated[str, typer.Option(help="why (written to the audit log)")],
    weight: Annotated[float | None, typer.Option(help="fair-share weight (default: the cluster file's, 1)")] = None,
    gpu_quota: Annotated[int | None, typer.Option(help="GPUs the organisation may hold at once")] = None,
) -> None:
    """Set an organisation's fair-share weight and concurrent-GPU quota (like sacctmgr's Fairshare and GrpTRES).

    Example: steppe admin org share kaznu --weight 2 --gpu-quota 16 --reason '2027 call'
    """
    org = _client().set_share(name, m.OrgShare(fairshare_weight=weight, gpu_quota=gpu_quota, reason=reason))
    shown_w = "the cluster file's" if org.fairshare_weight is None else f"{org.fairshare_weight:g}"
    shown_q = "the cluster file's" if org.gpu_quota is None else f"{org.gpu_quota} GPUs"
    typer.echo(f"{org.name}: weight {shown_w}, quota {shown_q}")


@project_app.command("create")
def project_create(project: Annotated[str, typer.Argument(help="ORG/PROJECT")]) -> None:
    """Create a project of an organisation (org-admin).

    Example: steppe admin project create kaznu/nlp
    """
    org, _, name = project.partition("/")
    p = _client().create_project(org, name)
    typer.echo(f"Created project {p.key}")


@project_app.command("list")
def project_list(as_json: JsonOpt = False) -> None:
    """Projects you may see.

    Example: steppe admin project list
    """
    items = _client().list_projects()
    _emit(list(items), as_json, ["PROJECT", "CREATED"], [[p.key, _when(p.created_s)] for p in items])


@user_app.command("create")
def user_create(
    name: str,
    org: Annotated[str, typer.Option(help="organisation")],
    role: Annotated[str, typer.Option(help="member, org-admin or reviewer (hub-admins only)")] = "member",
    token: Annotated[bool, typer.Option(help="also create and print a token")] = True,
) -> None:
    """Add a member to an organisation (and print a token for them).

    Example: steppe admin user create alice --org kaznu
    """
    client = _client()
    user = client.add_member(org, name, role)
    typer.echo(f"Created {user.role} {user.name} in {org}")
    if token:
        typer.echo(client.create_token(name).token)


@user_app.command("list")
def user_list(org: Annotated[str, typer.Option(help="organisation")], as_json: JsonOpt = False) -> None:
    """Members of an organisation.

    Example: steppe admin user list --org kaznu
    """
    items = _client().list_members(org)
    rows = [[u.name, u.role, "disabled" if u.disabled else "active"] for u in items]
    _emit(list(items), as_json, ["USER", "ROLE", "STATUS"], rows)


@user_app.command("remove")
def user_remove(name: str, org: Annotated[str, typer.Option(help="organisation")]) -> None:
    """Disable a member and revoke their tokens (their jobs and history stay).

    Example: steppe admin user remove alice --org kaznu
    """
    _client().remove_member(org, name)


@token_app.command("create")
def token_create(
    user: str,
    name: Annotated[str, typer.Option(help="a label")] = "default",
    expires: Annotated[str | None, typer.Option(help="lifetime: 90m, 12h, 30d, 2w or D-HH:MM:SS")] = None,
) -> None:
    """Create a token (printed once; only its hash is stored).

    Example: steppe admin token create alice --name laptop --expires 30d
    """
    try:
        lifetime = parse_lifetime(expires) if expires else None
    except ValueError as exc:
        raise _usage("--expires", exc) from None
    typer.echo(_client().create_token(user, name, lifetime).token)


@token_app.command("list")
def token_list(user: str, as_json: JsonOpt = False) -> None:
    """A user's tokens (prefixes only).

    Example: steppe admin token list alice
    """
    items = _client().list_tokens(user)
    rows = [[t.prefix, t.name, _when(t.created_s), _when(t.expires_s), "revoked" if t.revoked_s else "active"]
            for t in items]  # fmt: skip
    _emit(list(items), as_json, ["PREFIX", "NAME", "CREATED", "EXPIRES", "STATUS"], rows)


@token_app.command("revoke")
def token_revoke(prefix: str) -> None:
    """Revoke a token by its prefix.

    Example: steppe admin token revoke stp_1a2b3c4d
    """
    _client().revoke_token(prefix)


@alloc_app.command("create")
def alloc_create(
    project: Annotated[str, typer.Argument(help="ORG/PROJECT")],
    gpu_hours: Annotated[float, typer.Option(help="GPU-hours for the period")],
    period: Annotated[str, typer.Option(help="YYYY, YYYY-H1, YYYY-Q1 or YYYY-MM")],
    reason: Annotated[str, typer.Option(help="why (required; written to the audit log)")],
    max_gpus: Annotated[int | None, typer.Option(help="most GPUs in use at once")] = None,
    gpu_type: Annotated[list[str] | None, typer.Option(help="allowed GPU type, repeatable")] = None,
) -> None:
    """Grant GPU-hours to a project for a period (audited with its reason).

    Example: steppe admin alloc create kaznu/nlp --gpu-hours 5000 \\
               --period 2026-Q4 --reason '2026 call'
    """
    a = _client().create_allocation(project, period, gpu_hours, max_gpus, gpu_type, reason=reason)
    typer.echo(f"Allocated {a.gpu_hours:g} GPU-hours to {a.project} for {a.period}")


@alloc_app.command("list")
def alloc_list(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Allocations with their use and what is left.

    Example: steppe admin alloc list -A kaznu/nlp
    """
    items = _client().list_allocations(project)
    rows = [[a.project, a.period, f"{a.gpu_hours:g}", f"{a.used_gpu_hours:.2f}", f"{a.remaining_gpu_hours:.2f}",
             str(a.max_gpus or "-"), ",".join(a.gpu_types or []) or "any"] for a in items]  # fmt: skip
    _emit(list(items), as_json, ["PROJECT", "PERIOD", "GPU_HOURS", "USED", "LEFT", "MAX_GPUS", "GPU_TYPES"], rows)


@admin.command("usage")
def usage(project: Annotated[str, typer.Argument(help="ORG/PROJECT")], as_json: JsonOpt = False) -> None:
    """GPU-hours charged per month and GPU type.

    Example: steppe admin usage kaznu/nlp
    """
    items = _client().usage(project)
    rows = [[u.period, u.gpu_type, f"{u.gpu_hours:.3f}"] for u in items]
    _emit(list(items), as_json, ["MONTH", "GPU_TYPE", "GPU_HOURS"], rows)


def register(app: typer.Typer) -> None:
    """Add the hub's commands to the ``steppe`` app."""
    for name, fn in (("serve", serve), ("login", login), ("submit", submit), ("queue", queue), ("logs", logs),
                     ("cancel", cancel), ("history", history), ("show", show), ("nodes", nodes)):  # fmt: skip
        app.command(name)(fn)
    app.add_typer(admin, name="admin")
    from steppe.cli.governance_commands import register as register_governance

    register_governance(app)
