"""The declared schema of the tables: what `nightshift migrate` must produce.

Migrations are the history; this module is the current picture. A test builds one database from
this metadata (plus sql/) and another by migrating from empty, and compares their catalogs.
Replaceable objects (functions, views, triggers, roles) are not here: they live in sql/.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

SCHEMA = "nightshift"
metadata = MetaData(schema=SCHEMA)

FREQUENCIES = ("UNMONITORED", "HOURLY", "DAILY", "WEEKLY", "MONTHLY")
TASK_STATUSES = ("queued", "running", "done", "failed", "dead", "cancelled")
SCAN_STATUSES = ("CLEAN", "DRIFTED", "FAILED_CHECKS", "ERROR")
FINDING_STATUSES = ("OPEN", "RESOLVED", "SUPPRESSED")
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed", "dead")
TARGET_TYPES = ("pipeline", "cloud_integration", "organization")

frequency = Enum(*FREQUENCIES, name="frequency", schema=SCHEMA, metadata=metadata)
task_status = Enum(*TASK_STATUSES, name="task_status", schema=SCHEMA, metadata=metadata)
scan_status = Enum(*SCAN_STATUSES, name="scan_status", schema=SCHEMA, metadata=metadata)
finding_status = Enum(*FINDING_STATUSES, name="finding_status", schema=SCHEMA, metadata=metadata)
notification_status = Enum(
    *NOTIFICATION_STATUSES, name="notification_status", schema=SCHEMA, metadata=metadata
)


def _id() -> Column:
    return Column("id", BigInteger, Identity(always=True), primary_key=True)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()"))


def _updated() -> Column:
    return Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()"))


organizations = Table(
    "organizations",
    metadata,
    _id(),
    Column("name", Text, nullable=False, unique=True),
    Column("cost_optimization_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("compliance_enabled", Boolean, nullable=False, server_default=text("false")),
    # master switch: no remediation pull request is ever opened for an organization without it
    Column("auto_remediate", Boolean, nullable=False, server_default=text("false")),
    _created(),
    _updated(),
)

repositories = Table(
    "repositories",
    metadata,
    _id(),
    Column("organization_id", BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False, comment="git URL or local path"),
    Column("default_branch", Text, nullable=False, server_default=text("'main'")),
    Column("iac_tool", Text, nullable=False, server_default=text("'terraform'")),
    Column("pr_review_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("auto_remediate", Boolean, nullable=False, server_default=text("false")),
    _created(),
    _updated(),
    UniqueConstraint("organization_id", "name"),
    CheckConstraint("iac_tool IN ('terraform', 'tofu')", name="repositories_iac_tool_check"),
)

pipelines = Table(
    "pipelines",
    metadata,
    _id(),
    Column("repository_id", BigInteger, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("working_directory", Text, nullable=False, server_default=text("'.'")),
    Column("workspace", Text, nullable=False, server_default=text("'default'")),
    Column("var_files", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("env_allowlist", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    _created(),
    _updated(),
    UniqueConstraint("repository_id", "name"),
    # an IaC root is a path inside the repository: never absolute, never climbing out
    CheckConstraint(
        "working_directory !~ '^/' AND working_directory !~ '(^|/)\\.\\.(/|$)'",
        name="pipelines_working_directory_check",
    ),
)

cloud_integrations = Table(
    "cloud_integrations",
    metadata,
    _id(),
    Column(
        "organization_id", BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("provider", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("frameworks", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("compliance_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("deleted_at", DateTime(timezone=True)),
    _created(),
    _updated(),
    UniqueConstraint("organization_id", "provider", "account_id"),
    CheckConstraint("provider IN ('aws', 'gcp', 'azure')", name="cloud_integrations_provider_check"),
)

# What differs per task kind, as data (sql/data/task_kinds.sql seeds it): whether it is scheduled and
# on which target, which finding kinds it owns, which scan statuses it may report, which task its open
# findings hand over to (remediation) and which outbox template tells of its transitions. The result
# path (nightshift.record_result) and enqueue_due read it instead of testing kind names.
task_kinds = Table(
    "task_kinds",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("description", Text, nullable=False),
    Column("scheduled", Boolean, nullable=False, server_default=text("false")),
    Column("target_type", Text, comment="what its schedules point at; NULL for kinds not scheduled"),
    Column("finding_kinds", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("scan_statuses", ARRAY(scan_status), nullable=False, server_default=text("'{}'"),
           comment="the statuses its scans may have besides ERROR; empty: it stores no scans"),
    Column("remediation_kind", Text, comment="the task kind that open findings are handed to, if any"),
    Column("notification_template", Text, comment="outbox template of its finding transitions"),
    CheckConstraint(
        "target_type IN ('pipeline', 'cloud_integration', 'organization')",
        name="task_kinds_target_type_check",
    ),
    CheckConstraint("NOT scheduled OR target_type IS NOT NULL",
                    name="task_kinds_scheduled_has_target"),
)

# One row per scheduled (kind, target). Exactly one target column is set, matching the kind.
schedules = Table(
    "schedules",
    metadata,
    _id(),
    Column("kind", Text, nullable=False),
    Column("pipeline_id", BigInteger, ForeignKey("pipelines.id", ondelete="CASCADE")),
    Column("cloud_integration_id", BigInteger, ForeignKey("cloud_integrations.id", ondelete="CASCADE")),
    Column("organization_id", BigInteger, ForeignKey("organizations.id", ondelete="CASCADE")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("frequency", frequency, nullable=False, server_default=text("'DAILY'")),
    Column("next_run_at", DateTime(timezone=True)),
    Column("auto_create_pr", Boolean, nullable=False, server_default=text("false")),
    Column("notification_channel", Text),
    _created(),
    _updated(),
    CheckConstraint(
        "(kind = 'drift-scan' AND pipeline_id IS NOT NULL AND cloud_integration_id IS NULL"
        " AND organization_id IS NULL)"
        " OR (kind = 'compliance-scan' AND cloud_integration_id IS NOT NULL AND pipeline_id IS NULL"
        " AND organization_id IS NULL)"
        " OR (kind = 'cost-analysis' AND organization_id IS NOT NULL AND pipeline_id IS NULL"
        " AND cloud_integration_id IS NULL)",
        name="schedules_target_matches_kind",
    ),
    UniqueConstraint(
        "kind", "pipeline_id", "cloud_integration_id", "organization_id",
        name="schedules_one_per_target", postgresql_nulls_not_distinct=True,
    ),
    # No index holds next_run_at, and pages keep room: enqueue_due's update of next_run_at is then a
    # HOT update that writes no index entry (an index on it made 100,000 due rows 2.7x slower,
    # bench_schedule.py). What is due is found through schedule_wakeups below.
    postgresql_with={"fillfactor": "70"},
)

# Where enqueue_due looks: a hint per active schedule, "look at schedule_id from run_at on", kept at or
# before its next_run_at by enqueue_due and by triggers (sql/triggers/schedules_wakeups.sql). Narrow,
# insert-and-delete only, one index: the due scan costs what is due, not what is scheduled, and the
# schedule row stays the truth (a stale or duplicate hint is checked against it and dropped).
schedule_wakeups = Table(
    "schedule_wakeups",
    metadata,
    Column("kind", Text, nullable=False),
    Column("run_at", DateTime(timezone=True), nullable=False),
    Column("schedule_id", BigInteger, nullable=False),
    Index("schedule_wakeups_due_idx", "kind", "run_at"),
    comment="hints for enqueue_due: look at schedule_id from run_at on (its next_run_at decides)",
)

tasks = Table(
    "tasks",
    metadata,
    _id(),
    Column("kind", Text, nullable=False),
    Column("subject", Text, nullable=False, comment="what the task is about, e.g. pipeline/42"),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", task_status, nullable=False, server_default=text("'queued'")),
    Column("priority", SmallInteger, nullable=False, server_default=text("0")),
    Column("run_after", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("attempt", Integer, nullable=False, server_default=text("0"), comment="fencing token"),
    Column("max_attempts", Integer, nullable=False, server_default=text("3")),
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # which schedule enqueued it; deliberately no foreign key: the check cost a quarter of enqueueing
    # 100,000 due tasks, and a task (kept for its retention period) may outlive its schedule
    Column("schedule_id", BigInteger),
    _created(),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint("max_attempts >= 1", name="tasks_max_attempts_check"),
    CheckConstraint("attempt >= 0", name="tasks_attempt_check"),
    CheckConstraint(
        "status <> 'running' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)",
        name="tasks_running_is_locked",
    ),
    # rule 3: at most one queued-or-running task per (kind, subject)
    Index(
        "tasks_one_in_flight", "kind", "subject", unique=True,
        postgresql_where=text("status IN ('queued', 'running')"),
    ),
    # the claim path: only queued rows, in claim order (highest priority, then oldest run_after)
    Index(
        "tasks_claim_idx", text("priority DESC"), "run_after", "id",
        postgresql_where=text("status = 'queued'"),
    ),
    # the leases (only running tasks have one). Not "WHERE status = 'running'": completions name
    # their tasks by id, and with that predicate a generic plan could walk every running task's
    # lease instead of looking the ids up in the primary key.
    Index("tasks_lease_idx", "locked_until", postgresql_where=text("locked_until IS NOT NULL")),
    Index("tasks_finished_idx", "finished_at", postgresql_where=text("finished_at IS NOT NULL")),
)

scans = Table(
    "scans",
    metadata,
    _id(),
    Column("task_id", BigInteger, ForeignKey("tasks.id", ondelete="SET NULL")),
    Column("attempt", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("status", scan_status, nullable=False),
    Column("summary", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("error", Text),
    Column("artifacts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # rule 7: results are keyed by task and attempt, so a re-delivered result never duplicates
    UniqueConstraint("task_id", "attempt", name="scans_task_attempt_key"),
    Index("scans_subject_idx", "subject", "finished_at"),
)

suppressions = Table(
    "suppressions",
    metadata,
    _id(),
    Column("kind", Text, comment="finding kind, NULL for any"),
    Column("subject_pattern", Text, nullable=False, server_default=text("'*'")),
    Column("address_pattern", Text, nullable=False, server_default=text("'*'")),
    Column("attribute_pattern", Text, nullable=False, server_default=text("'*'")),
    Column("owner", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    _created(),
)

findings = Table(
    "findings",
    metadata,
    _id(),
    Column("kind", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("resource_address", Text),
    Column("resource_type", Text),
    Column("module", Text),
    Column("provider_id", Text),
    Column("change_type", Text),
    Column("check_id", Text),
    Column("severity", Text),
    Column("status", finding_status, nullable=False, server_default=text("'OPEN'")),
    Column("first_seen", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_seen", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("resolved_at", DateTime(timezone=True)),
    Column("occurrences", Integer, nullable=False, server_default=text("1")),
    Column("reopened_count", Integer, nullable=False, server_default=text("0")),
    Column("first_scan_id", BigInteger, ForeignKey("scans.id", ondelete="SET NULL")),
    Column("last_scan_id", BigInteger, ForeignKey("scans.id", ondelete="SET NULL")),
    Column("suppression_id", BigInteger, ForeignKey("suppressions.id", ondelete="SET NULL")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    UniqueConstraint("subject", "fingerprint", name="findings_subject_fingerprint_key"),
    Index("findings_subject_status_idx", "subject", "status"),
)

notifications = Table(
    "notifications",
    metadata,
    _id(),
    Column("channel", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", notification_status, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("scan_id", BigInteger, ForeignKey("scans.id", ondelete="SET NULL")),
    Column("sent_at", DateTime(timezone=True)),
    _created(),
    Index("notifications_pending_idx", "next_attempt_at", postgresql_where=text("status = 'pending'")),
)

remediations = Table(
    "remediations",
    metadata,
    _id(),
    Column("subject", Text, nullable=False),
    Column("finding_ids", ARRAY(BigInteger), nullable=False, server_default=text("'{}'")),
    Column("task_id", BigInteger, ForeignKey("tasks.id", ondelete="SET NULL")),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("branch", Text),
    Column("pr_url", Text),
    Column("verified_scan_id", BigInteger, ForeignKey("scans.id", ondelete="SET NULL")),
    _created(),
    _updated(),
    CheckConstraint(
        "status IN ('pending', 'running', 'pr_opened', 'verified', 'failed')",
        name="remediations_status_check",
    ),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("task_id", BigInteger, ForeignKey("tasks.id", ondelete="SET NULL")),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

# Operator-tunable settings as data (stagger windows, retention, ...): seeded by sql/data/.
settings = Table(
    "settings",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("description", Text),
)

# Which sql/ files are applied, by checksum: migrating twice applies nothing the second time.
applied_sql = Table(
    "applied_sql",
    metadata,
    Column("path", Text, primary_key=True),
    Column("sha256", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
