"""The declared schema of the tables: what `nightshift migrate` must produce.

Migrations are the history; this module is the current picture. A test builds one database from
this metadata (plus sql/) and another by migrating from empty, and compares their catalogs.
Replaceable objects (functions, views, triggers, roles) are not here: they live in sql/.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DDL,
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
    Interval,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    event,
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
    Column("remediation_daily_pr_limit", Integer, nullable=False, server_default=text("10"),
           comment="at most this many remediation pull requests opened per rolling 24 hours"),
    CheckConstraint("remediation_daily_pr_limit >= 0", name="organizations_remediation_daily_pr_limit_check"),
)

# Tenancy (migration 0014): database roles whose members may read an organization's rows through
# row-level security (sql/row_security.sql). The role is kept by name, as a DBA writes it in GRANT.
organization_members = Table(
    "organization_members",
    metadata,
    Column("organization_id", BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("member", Text, primary_key=True, comment="a database role name (a team's group role)"),
    _created(),
    Index("organization_members_member_idx", "member"),
    comment="database roles whose members may read an organization's rows (row-level security)",
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
    # what a forge's webhook names the repository by (the intake also matches its clone URLs)
    Column("full_name", Text,
           comment="owner/name on the forge, as webhooks name it (e.g. Codertocat/Hello-World)"),
    Column("webhook_secret_ref", Text,
           comment="secret reference (env:NAME or file:/path) of its own webhook secret; "
                   "NULL: the global one"),
    UniqueConstraint("organization_id", "name"),
    CheckConstraint("iac_tool IN ('terraform', 'tofu')", name="repositories_iac_tool_check"),
    CheckConstraint("webhook_secret_ref ~ '^(env|file):.'", name="repositories_webhook_secret_ref_check"),
    Index("repositories_full_name_key", text("lower(full_name)"), unique=True),
    # how its pull requests are reached (dispatcher/forge/): a token by reference, never its value
    Column("forge", Text, nullable=False, server_default=text("'github'"),
           comment="github (REST API) or local (branches on the remote, pull requests as rows)"),
    Column("forge_api_url", Text,
           comment="GitHub Enterprise API URL; NULL: $GITHUB_API_URL, else https://api.github.com"),
    Column("forge_token_ref", Text, comment="secret reference (env:NAME or file:/path) of the forge token"),
    CheckConstraint("forge IN ('github', 'local')", name="repositories_forge_check"),
    CheckConstraint("forge_token_ref ~ '^(env|file):.'", name="repositories_forge_token_ref_check"),
    Column("remediation_daily_pr_limit", Integer, nullable=False, server_default=text("3"),
           comment="at most this many remediation pull requests opened per rolling 24 hours"),
    Column("remediate_stateful", Boolean, nullable=False, server_default=text("false"),
           comment="allow remediation of deleted or replaced resources of a stateful type"),
    CheckConstraint("remediation_daily_pr_limit >= 0", name="repositories_remediation_daily_pr_limit_check"),
)

# the local forge's pull requests (dispatcher/forge/local.py), written by nightshift.apply_forge_changes
pull_requests = Table(
    "pull_requests",
    metadata,
    _id(),
    Column("repository_id", BigInteger, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("head_ref", Text, nullable=False),
    Column("base_ref", Text, nullable=False),
    Column("head_sha", Text),
    Column("title", Text, nullable=False, server_default=text("''")),
    Column("body", Text, nullable=False, server_default=text("''")),
    Column("state", Text, nullable=False, server_default=text("'open'")),
    Column("comments", JSONB, nullable=False, server_default=text("'{}'"),
           comment="hidden marker -> comment body"),
    Column("statuses", JSONB, nullable=False, server_default=text("'{}'"),
           comment="context -> {sha, state, description, target_url, at}"),
    Column("task_id", BigInteger, comment="the task that opened it"),
    _created(),
    _updated(),
    CheckConstraint("number > 0", name="pull_requests_number_check"),
    CheckConstraint("state IN ('open', 'closed', 'merged')", name="pull_requests_state_check"),
    UniqueConstraint("repository_id", "number"),
    Index("pull_requests_open_head_key", "repository_id", "head_ref", unique=True,
          postgresql_where=text("state = 'open'")),
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
    Column("pr_plan", Boolean, nullable=False, server_default=text("false"),
           comment="run terraform plan for this root in pull-request reviews (needs its credentials)"),
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
    # migration 0007: how Prowler reaches the live account; NULL: no live scan (Checkov only)
    Column("credentials", JSONB,
           comment="how Prowler reaches the live account (names and references, never values); "
                   "NULL: no live scan"),
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
    Column("remediates", ARRAY(Text), nullable=False, server_default=text("'{}'"),
           comment="for a remediation kind: the finding kinds it fixes"),
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

# Where enqueue_due looks: hints "look at schedule_ids from run_at on", kept by enqueue_due and by
# triggers (sql/triggers/schedules_wakeups.sql) so that every active schedule is named by one whose
# run_at is at or before its next_run_at, or in the same minute. Narrow, insert-and-delete only, one
# index: the due scan costs what is due, not what is scheduled, and the schedule row stays the truth (a
# stale or duplicate hint is checked against it and dropped). One row names the schedules of a minute
# of next runs: enqueue_due writes a few hundred rows for 100,000 advanced schedules, not 100,000.
schedule_wakeups = Table(
    "schedule_wakeups",
    metadata,
    Column("kind", Text, nullable=False),
    Column("run_at", DateTime(timezone=True), nullable=False),
    Column("schedule_ids", ARRAY(BigInteger), nullable=False),
    Index("schedule_wakeups_due_idx", "kind", "run_at"),
    comment="hints for enqueue_due: look at schedule_ids from run_at on (their next_run_at decides)",
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
    Column("summary", JSONB, comment="the agent's summary of a successful run"),
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
    # queue_health: what failed or died lately, without reading the done tasks
    Index("tasks_failed_idx", "finished_at", postgresql_where=text("status IN ('failed', 'dead')")),
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
    # covering: the reporting views (scan_history, target_status) read a target's scans from the index
    Index("scans_subject_idx", "subject", "finished_at", postgresql_include=["kind", "status", "started_at"]),
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
    # scan ids without foreign keys (a referential check per row was half the cost of recording a scan);
    # nightshift.run_maintenance() clears them when it deletes the scan (migration 0017)
    Column("first_scan_id", BigInteger),
    Column("last_scan_id", BigInteger),
    Column("suppression_id", BigInteger, ForeignKey("suppressions.id", ondelete="SET NULL")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    UniqueConstraint("subject", "fingerprint", name="findings_subject_fingerprint_key"),
    # the tenancy scope of a finding (nightshift.subject_scope, written out): a reader's row-level security
    # policy finds its organizations' findings through it (migration 0024)
    Index("findings_scope_idx", text("(CASE WHEN subject LIKE 'pr/%' THEN 'repository/' || "
                                     "split_part(subject, '/', 2) ELSE subject END)")),
    # No index holds status and pages keep room: a rescan's update of every finding it sees (last_seen,
    # occurrences) and of every one it resolves is a HOT update that writes no index entry (migration
    # 0017; 100,000 findings recorded in bench_compliance.py).
    postgresql_with={"fillfactor": "50"},
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
    # the sender's lease (dispatcher/notify/sender.py), like a task's: an expired one is claimed again
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("response", Text, comment="what the endpoint answered last (capped)"),
    Column("message_id", BigInteger, comment="rows sent in one grouped message share it"),
    Index("notifications_pending_idx", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("notifications_lease_idx", "locked_until", postgresql_where=text("status = 'sending'")),
    # the retention delete of nightshift.prune_history (setting retention.notifications)
    Index("notifications_sent_idx", "sent_at", postgresql_where=text("status = 'sent'")),
)

# Where notifications go: a schedule's notification_channel names a row here. Settings hold secret
# references (env:NAME, file:/path) resolved by the sender, never a webhook URL, key or password.
notification_channels = Table(
    "notification_channels",
    metadata,
    _id(),
    Column("organization_id", BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"),
           comment="the tenant it belongs to; NULL: shared by all"),
    Column("name", Text, nullable=False, comment="what schedules.notification_channel names"),
    Column("kind", Text, nullable=False),
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb"),
           comment="per kind; secrets only as references env:NAME or file:/path"),
    Column("digest", Text, comment="hourly or daily: collect transitions and send one message per period"),
    Column("min_interval", Interval, nullable=False, server_default=text("'1 second'::interval"),
           comment="at most one message per this interval; more are grouped"),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    _created(),
    _updated(),
    # the rate limit, shared by every sender (sql/functions/notification_claim.sql): no message before
    # held_until; locked_by/locked_until: the sender sending the rows it claimed, a lease
    Column("held_until", DateTime(timezone=True),
           comment="no message before this time: min_interval after a send, a 429's Retry-After"),
    Column("locked_by", Text, comment="the sender sending this channel's claimed rows"),
    Column("locked_until", DateTime(timezone=True),
           comment="that sender's lease on the channel; expired: free again"),
    CheckConstraint("kind IN ('slack', 'webhook', 'email', 'log')", name="notification_channels_kind_check"),
    CheckConstraint("digest IN ('hourly', 'daily')", name="notification_channels_digest_check"),
    CheckConstraint("min_interval >= interval '0'", name="notification_channels_min_interval_check"),
    UniqueConstraint("name", name="notification_channels_name_key"),
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
    Column("scan_id", BigInteger, ForeignKey("scans.id", ondelete="SET NULL"),
           comment="the scan that asked for it"),
    Column("reason", Text, comment="why it was refused or failed"),
    Column("fixes", JSONB, nullable=False, server_default=text("'[]'"),
           comment="per finding: adopt or revert, and why"),
    Column("findings_digest", Text,
           comment="md5 of the findings' details it was asked to fix: a changed drift updates it"),
    Column("pr_number", Integer),
    Column("commit_sha", Text),
    Column("pr_opened_at", DateTime(timezone=True)),
    Column("merged_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint(
        "status IN ('pending', 'running', 'pr_opened', 'merged', 'verified', 'failed', 'refused')",
        name="remediations_status_check",
    ),
    Index("remediations_one_open_key", "subject", unique=True,
          postgresql_where=text("status IN ('pending', 'running', 'pr_opened', 'merged')")),
    Index("remediations_one_refusal_key", "subject", unique=True,
          postgresql_where=text("status = 'refused'")),
    Index("remediations_task_idx", "task_id"),
)

# resource types whose deletion or replacement loses data: never remediated without the repository's
# remediate_stateful (seeded by sql/data/stateful_resource_types.sql; extend it with an INSERT)
stateful_resource_types = Table(
    "stateful_resource_types",
    metadata,
    Column("type", Text, primary_key=True),
    Column("description", Text),
)

# no remediation pull request is opened while a freeze covers its repository (e.g. a release week)
remediation_freezes = Table(
    "remediation_freezes",
    metadata,
    _id(),
    Column("organization_id", BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"),
           comment="NULL: every organization"),
    Column("repository_id", BigInteger, ForeignKey("repositories.id", ondelete="CASCADE"),
           comment="NULL: every repository"),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    _created(),
    CheckConstraint("ends_at > starts_at", name="remediation_freezes_period_check"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("event", Text, nullable=False),
    # the task the delivery enqueued; no foreign key (migration 0016): the check cost as much as the
    # rest of recording a delivery, and tasks are pruned on their own schedule
    Column("task_id", BigInteger),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # maintenance prunes by age (retention.webhook_deliveries)
    Index("webhook_deliveries_received_idx", "received_at"),
)

# Bearer tokens of external schedulers (`nightshift tokens create`). The token itself is shown once and
# never stored: a public prefix finds the row, and the sha256 of the whole token is compared in
# constant time (dispatcher/intake/tokens.py).
api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    Column("name", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False, unique=True,
           comment="the public part of the token, which finds its row"),
    Column("token_hash", Text, nullable=False, comment="sha256 of the whole token, hex"),
    Column("scopes", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    _created(),
    Column("last_used_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", name="api_tokens_token_hash_check"),
)

# Where an organization's FOCUS billing exports land: a local directory (or file) or an S3 prefix.
cost_sources = Table(
    "cost_sources",
    metadata,
    _id(),
    Column("organization_id", BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("uri", Text, nullable=False, comment="a local path, or s3://bucket/prefix"),
    Column("focus_version", Text, comment="declared FOCUS version; NULL: inferred from each file's columns"),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    _created(),
    UniqueConstraint("organization_id", "uri"),
)

# The ingest manifest: one row per file loaded, with its checksum. A file whose checksum is already
# here for the same source and key (and whose rows no later file replaced) is not loaded again.
cost_ingests = Table(
    "cost_ingests",
    metadata,
    _id(),
    Column("source_id", BigInteger, ForeignKey("cost_sources.id", ondelete="CASCADE"), nullable=False),
    Column("object_key", Text, nullable=False, comment="the file's path or S3 key"),
    Column("sha256", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("focus_version", Text, nullable=False),
    Column("billing_periods", ARRAY(DateTime(timezone=True)), nullable=False,
           comment="the BillingPeriodStart values the file covers (and replaced)"),
    Column("replaced_by", BigInteger, ForeignKey("cost_ingests.id", ondelete="SET NULL"),
           comment="the later ingest that replaced (some of) its billing periods"),
    Column("ingested_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("summarized_at", DateTime(timezone=True), comment="when its rows were added to cost_line_summary"),
    Index("cost_ingests_source_key_idx", "source_id", "object_key"),
)

# The line items summed per ingest, billing period, ChargePeriodStart, currency, service, sub account,
# charge category and commitment status: what the analyses by service and account read instead of every
# line item (nightshift.cost_summarize fills it, sql/functions/cost_summarize.sql). Migration 0018.
cost_line_summary = Table(
    "cost_line_summary",
    metadata,
    Column("source_id", BigInteger, ForeignKey("cost_sources.id", ondelete="CASCADE"), nullable=False),
    Column("ingest_id", BigInteger, ForeignKey("cost_ingests.id", ondelete="CASCADE"), nullable=False),
    Column("billing_period_start", DateTime(timezone=True), nullable=False),
    Column("charge_period_start", DateTime(timezone=True), nullable=False),
    Column("charge_period_end", DateTime(timezone=True),
           comment="the latest ChargePeriodEnd of the rows summed"),
    Column("billing_currency", Text),
    Column("service_name", Text),
    Column("sub_account_id", Text),
    Column("charge_category", Text),
    Column("commitment_discount_status", Text),
    Column("committed", Boolean, nullable=False, comment="CommitmentDiscountId is not null"),
    Column("line_items", BigInteger, nullable=False),
    Column("billed_cost", Numeric()),
    Column("effective_cost", Numeric()),
    Column("list_cost", Numeric()),
    Index("cost_line_summary_source_charge_idx", "source_id", "charge_period_start"),
    Index("cost_line_summary_ingest_idx", "ingest_id"),
)


def _focus_columns() -> list[Column]:
    from dispatcher.cost.focus import COLUMNS

    types: dict[str, Any] = {"numeric": Numeric(), "timestamptz": DateTime(timezone=True), "text": Text(),
                             "jsonb": JSONB()}
    return [Column(c.column, types[c.type], nullable=c.column != "charge_period_start", comment=c.name)
            for c in COLUMNS]


# FOCUS line items, partitioned by month of ChargePeriodStart; the partitions are created on demand by
# nightshift.cost_ensure_partitions (sql/functions/cost_partitions_ensure.sql). Amounts are numeric
# (exact), never floating point. No primary key: rows are replaced per (source, billing period).
cost_line_items = Table(
    "cost_line_items",
    metadata,
    # The defaults let the ingest COPY a file straight in: they read the settings it sets per transaction.
    # No foreign key: its check, once per row, cost 40% of the ingest; the ingest writes only the id of
    # the source it read, and the trigger cost_sources_delete_items deletes the items of a deleted source.
    Column("source_id", BigInteger, nullable=False,
           server_default=text("(current_setting('nightshift.cost_source_id'))::bigint")),
    Column("ingest_id", BigInteger, nullable=False,
           server_default=text("(current_setting('nightshift.cost_ingest_id'))::bigint")),
    *_focus_columns(),
    Column("extra", JSONB, comment="provider columns x_* and other non-FOCUS columns of the file"),
    # a file's rows (what it covered, what a restatement deletes) are found through their ingest: a
    # BRIN index, since a file's rows are written together (block ranges of one ingest). A btree wrote
    # a WAL record per row, a fifth of the COPY's time.
    Index("cost_line_items_source_ingest_idx", "source_id", "ingest_id", "billing_period_start",
          postgresql_using="brin"),
    postgresql_partition_by="RANGE (charge_period_start)",
)

# Its only partition covers all time and is partitioned by month in turn (cost_line_items_YYYY_MM, made
# by nightshift.cost_ensure_partitions). Row-level security is checked on the table a statement names,
# and Postgres refuses COPY FROM where it applies: cost_line_items is under FORCE row-level security,
# this one is not, and only the cost loader may INSERT into it (sql/grants/cost_loader.sql), so the
# loader COPYs files here and Postgres routes the rows; everyone else reads cost_line_items.
COST_LINE_ITEMS_MONTHS_DDL = (
    "CREATE TABLE nightshift.cost_line_items_months PARTITION OF nightshift.cost_line_items"
    " FOR VALUES FROM (MINVALUE) TO (MAXVALUE) PARTITION BY RANGE (charge_period_start)")
event.listen(cost_line_items, "after_create", DDL(COST_LINE_ITEMS_MONTHS_DDL))

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

# Compliance (migration 0007). Explicit links from a cloud integration to the pipelines its Checkov scans
# cover; an integration without links covers every pipeline of its organization.
cloud_integration_pipelines = Table(
    "cloud_integration_pipelines",
    metadata,
    Column("cloud_integration_id", BigInteger, ForeignKey("cloud_integrations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("pipeline_id", BigInteger, ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True),
    _created(),
)

# One row per requirement of a framework version, loaded from a scanner's framework file.
compliance_requirements = Table(
    "compliance_requirements",
    metadata,
    _id(),
    Column("framework", Text, nullable=False, comment="normalized name: CIS, SOC2, ISO27001..."),
    Column("framework_version", Text, nullable=False, server_default=text("''")),
    Column("provider", Text, nullable=False),
    Column("source_name", Text, nullable=False,
           comment="the framework file it was loaded from, e.g. prowler:cis_3.0_aws"),
    Column("requirement", Text, nullable=False, comment="the framework's own id: 1.10, cc_1_3"),
    Column("title", Text),
    Column("section", Text),
    Column("assessment", Text, nullable=False, server_default=text("'automated'")),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    UniqueConstraint("source_name", "requirement", name="compliance_requirements_source_key"),
    CheckConstraint("assessment IN ('automated', 'manual')", name="compliance_requirements_assessment_check"),
    Index("compliance_requirements_framework_idx", "framework", "provider"),
)

# Scanner check -> requirement, each row naming its source; `judgement` marks a hand-curated row.
compliance_check_mappings = Table(
    "compliance_check_mappings",
    metadata,
    Column("requirement_id", BigInteger, ForeignKey("compliance_requirements.id", ondelete="CASCADE"),
           primary_key=True),
    Column("scanner", Text, primary_key=True),
    Column("check_id", Text, primary_key=True),
    Column("source", Text, nullable=False, comment="where the mapping comes from (a file, a URL)"),
    Column("judgement", Boolean, nullable=False, server_default=text("false"),
           comment="true: curated by hand, a reviewed opinion rather than a published mapping"),
    CheckConstraint("scanner IN ('checkov', 'prowler')", name="compliance_check_mappings_scanner_check"),
    Index("compliance_check_mappings_check_idx", "scanner", "check_id"),
)
