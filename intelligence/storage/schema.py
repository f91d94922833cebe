"""The decision database's tables as they are now (the head of ``migrations/``).

Targets are structured columns (cluster, namespace, workload, lever), never strings to
parse. Every time is stored timezone-aware (UTC); SQLite hands them back naive, so
readers go through :func:`intelligence.storage.database.aware`.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(512), nullable=False, index=True),  # "<cluster>/<namespace>/<workload>:<lever>"
    sa.Column("kind", sa.String(32), nullable=False),  # ICOS remediation type
    sa.Column("lever", sa.String(32), nullable=False),
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("workload", sa.String(253), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("explanation", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revision", sa.Integer, nullable=False, server_default="1"),  # 1, then +1 at every change in place
    sa.Column("in_force_at", sa.DateTime(timezone=True), nullable=True),  # when the value is needed (None: now)
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("recommendation_id", sa.Integer, nullable=True, index=True),
    sa.Column("detail", sa.JSON, nullable=False),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recommendation_id", sa.Integer, nullable=False, unique=True),
    sa.Column("lever", sa.String(32), nullable=False),
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("workload", sa.String(253), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("direction", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("ix_actions_workload", "namespace", "workload"),
)

switches = sa.Table(
    "actuator_switches",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("on", sa.Boolean, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
)

recommendation_revisions = sa.Table(
    "recommendation_revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recommendation_id", sa.Integer, nullable=False, index=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("summary", sa.String(2000), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

decided_targets = sa.Table(
    "decided_targets",
    metadata,
    sa.Column("cluster", sa.String(253), primary_key=True),
    sa.Column("namespace", sa.String(253), primary_key=True),
    sa.Column("workload", sa.String(253), primary_key=True),
    sa.Column("lever", sa.String(32), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),  # a pod count, or a cluster name
    sa.Column("direction", sa.Integer, nullable=False),  # of the last change: +1, -1, or 0 (a placement)
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),  # last confirmed by a decision
    sa.Column("until", sa.DateTime(timezone=True), nullable=True),  # a floor's pulse ends then
)

engine_state = sa.Table(
    "engine_state",
    metadata,
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_step_at", sa.Float, nullable=False),  # epoch seconds of the last step processed
)

anomaly_events = sa.Table(
    "anomaly_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("signal", sa.String(64), nullable=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("workload", sa.String(253), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # epoch seconds of the sample
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reason", sa.JSON, nullable=False),
    sa.Index("ix_anomaly_events_at", "at"),
    sa.Index("ix_anomaly_events_series", "cluster", "signal", "at"),
)

# The transactional outbox: every event is written in the transaction of the change it reports, so it
# commits with it or not at all. ``seq`` orders the stream (the SSE id, each subscriber's cursor); ``id``
# is the CloudEvents id a receiver de-duplicates on. ``time`` is the service's clock (maybe simulated),
# ``recorded_at`` the wall clock (retention, and how long a gap in ``seq`` is waited for).
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: a rowid alias, never reused

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("cluster", sa.String(253), nullable=True),
    sa.Column("namespace", sa.String(253), nullable=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("data", sa.JSON, nullable=False),
    sqlite_autoincrement=True,
)

# One row per webhook subscriber: the last event it accepted, and the state of the delivery in progress.
# A replica leases the row before delivering (so that two replicas never deliver the same event).
webhook_cursors = sa.Table(
    "webhook_cursors",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("delivered", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("leased_by", sa.String(64), nullable=True),
    sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

fleet_load_parts = sa.Table(
    "fleet_load_parts",
    metadata,
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("cluster", sa.String(253), primary_key=True),
    sa.Column("shard_count", sa.Integer, nullable=False),  # the fleet's size as the writer knows it
    sa.Column("written_at", sa.Float, nullable=False),  # epoch seconds of the writer's step
    sa.Column("steps", sa.JSON, nullable=False),  # summed upper quantile per step of the horizon
    sa.Column("workloads", sa.JSON, nullable=False),  # [[namespace, name, peak], ...]
    sa.Column("scored", sa.Integer, nullable=False),
    sa.Column("anomalous", sa.Integer, nullable=False),
)

fleet_members = sa.Table(
    "fleet_members",
    metadata,
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("shard_count", sa.Integer, nullable=False),  # the fleet's size as this replica runs it
    sa.Column("started_at", sa.Float, nullable=False),  # epoch seconds: when this replica started
    sa.Column("seen_at", sa.Float, nullable=False),  # epoch seconds of its last step
)

series_latest = sa.Table(
    "series_latest",
    metadata,
    sa.Column("series", sa.String(2048), primary_key=True),  # str(SeriesKey): cluster/signal{labels}
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("signal", sa.String(64), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("shard", sa.Integer, nullable=False),  # the replica that wrote it (its owner then)
    sa.Column("written_at", sa.Float, nullable=False),  # epoch seconds of that replica's step
    sa.Column("forecast", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("score", sa.JSON(none_as_null=True), nullable=True),  # the latest anomaly score
    sa.Index("ix_series_latest_cluster_signal", "cluster", "signal"),
)
