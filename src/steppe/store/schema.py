"""The hub's tables (SQLAlchemy Core). Migrations in ``steppe/store/migrations`` create them.

Times are epoch seconds (floats, suffix ``_s``). A job's spec lives in ``jobs`` next to what
only the live hub needs (command, working directory, environment, log paths, the executor's
process handle); every state change is appended to ``job_events`` and never rewritten.
``job_requests`` is the loop's inbox: the API writes a request (submit or cancel) in the same
transaction as the job, and the single writer consumes and deletes it in its cycle.

Governance (revision 0002): ``proposals`` (the spec, state, screening and approval of a
project's AI-use review, as JSON), ``review_transitions`` (every workflow step), ``terms_versions``
and ``terms_acceptances``, ``datasets`` and ``job_datasets`` (which registered datasets a job
reads), and ``audit_log``: the hash-chained, append-only log (``steppe.store.audit``).

Tenant shares (revision 0003): an organisation's fair-share weight and concurrent-GPU quota,
set through the API with a reason; the scheduler reads them at start and on every change.

A test checks that the migrated schema equals this metadata (``alembic check`` style).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

ROLES = ("hub-admin", "org-admin", "member", "reviewer")

organisations = Table(
    "organisations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("country", String(2), nullable=False),
    Column("created_s", Float, nullable=False),
    Column("fairshare_weight", Float, nullable=True),  # revision 0003; None: as the cluster file says (1.0)
    Column("gpu_quota", Integer, nullable=True),  # revision 0003; None: as the cluster file says (no quota)
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_s", Float, nullable=False),
    UniqueConstraint("org_id", "name"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=True),
    Column("role", String(16), nullable=False),
    Column("created_s", Float, nullable=False),
    Column("disabled_s", Float, nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_s", Float, nullable=False),
    Column("expires_s", Float, nullable=True),
    Column("revoked_s", Float, nullable=True),
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("period", String(32), nullable=False),
    Column("start_s", Float, nullable=False),
    Column("end_s", Float, nullable=False),
    Column("gpu_hours", Float, nullable=False),
    Column("max_gpus", Integer, nullable=True),
    Column("gpu_types", JSON, nullable=True),
    Column("created_s", Float, nullable=False),
    UniqueConstraint("project_id", "period"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("argv", JSON, nullable=True),
    Column("script", Text, nullable=True),
    Column("workdir", Text, nullable=False),
    Column("env", JSON, nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("gpu_type", String(32), nullable=True),
    Column("walltime_s", Float, nullable=False),
    Column("qos", String(32), nullable=False),
    Column("workload", String(16), nullable=False, server_default="training"),  # revision 0003
    Column("submit_s", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("start_s", Float, nullable=True),
    Column("end_s", Float, nullable=True),
    Column("executed_s", Float, nullable=False),
    Column("alloc", JSON, nullable=True),
    Column("alloc_gpu_type", String(32), nullable=True),
    Column("handle", JSON, nullable=True),
    Column("stop_intent", String(16), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("exit_signal", Integer, nullable=True),
    Column("stdout_path", Text, nullable=False),
    Column("stderr_path", Text, nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("request_sha256", String(64), nullable=True),
    Column("charged_until_s", Float, nullable=True),
    Column("submit_dir", Text, nullable=True),  # revision 0005; None: submitted without one (SLURM_SUBMIT_DIR)
    Column("dependency", JSON, nullable=True),  # revision 0006: [[kind, job id], ...] (core/dependency.py)
    Column("begin_s", Float, nullable=True),  # revision 0006: not before this time (sbatch --begin)
    Column("array_job_id", Integer, nullable=True),  # revision 0006: a task of this array (its first task's id)
    Column("array_task_id", Integer, nullable=True),  # revision 0006: its index (%a)
    Column("array_count", Integer, nullable=True),  # revision 0006: the array's tasks
    Column("array_limit", Integer, nullable=True),  # revision 0006: at most this many run at once (%N)
    UniqueConstraint("user_id", "idempotency_key"),
    Index(None, "state"),
    Index(None, "project_id", "submit_s"),
    sqlite_autoincrement=True,
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False, index=True),
    Column("t_s", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(200), nullable=False),
    sqlite_autoincrement=True,
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    Column("period", String(32), nullable=False),
    Column("gpu_type", String(32), nullable=False),
    Column("gpu_seconds", Float, nullable=False),
    Column("first_s", Float, nullable=False),
    Column("last_s", Float, nullable=False),
    # revision 0004: the meter's energy figures (0 and "none" for rows written before it)
    Column("it_kwh", Float, nullable=False, server_default="0"),
    Column("facility_kwh", Float, nullable=False, server_default="0"),
    Column("carbon_kg", Float, nullable=False, server_default="0"),
    Column("cost_kzt", Float, nullable=False, server_default="0"),
    Column("energy_source", String(8), nullable=False, server_default="none"),
    UniqueConstraint("job_id", "period", "gpu_type"),
)

job_requests = Table(
    "job_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("t_s", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    sqlite_autoincrement=True,
)


# -- governance (revision 0002) ----------------------------------------------------------------------
proposals = Table(
    "proposals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("state", String(24), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("screening", JSON, nullable=True),
    Column("rules_version", String(32), nullable=True),
    Column("approval", JSON, nullable=True),
    Column("created_s", Float, nullable=False),
    Column("updated_s", Float, nullable=False),
    sqlite_autoincrement=True,
)

review_transitions = Table(
    "review_transitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("proposal_id", Integer, ForeignKey("proposals.id"), nullable=False, index=True),
    Column("t_s", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(24), nullable=False),
    Column("from_state", String(24), nullable=False),
    Column("to_state", String(24), nullable=False),
    Column("reason", Text, nullable=False),
    sqlite_autoincrement=True,
)

terms_versions = Table(
    "terms_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", String(32), nullable=False, unique=True),
    Column("effective_on", String(10), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_s", Float, nullable=False),
)

terms_acceptances = Table(
    "terms_acceptances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("version", String(32), nullable=False),
    Column("t_s", Float, nullable=False),
    UniqueConstraint("user_id", "version"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("jurisdiction", String(8), nullable=False),
    Column("sensitivity", String(16), nullable=False),
    Column("location", String(32), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("allowed_jurisdictions", JSON, nullable=False),
    Column("forbidden_transit", JSON, nullable=False),
    Column("created_s", Float, nullable=False),
)

job_datasets = Table(
    "job_datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False, index=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    UniqueConstraint("job_id", "dataset_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("time_s", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    sqlite_autoincrement=True,
)

node_drains = Table(  # nodes an operator drained (``steppe node drain``): nothing new starts there
    "node_drains",
    metadata,
    Column("node", String(200), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("since_s", Float, nullable=False),
)
