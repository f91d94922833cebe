"""A sharded fleet: each replica's part of every cluster's forecast load (read by the leader to decide moves and
placement scores), and the latest forecast and anomaly score of every series (so any replica answers for any).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_load_parts",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("cluster", sa.String(253), primary_key=True),
        sa.Column("shard_count", sa.Integer, nullable=False),
        sa.Column("written_at", sa.Float, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("workloads", sa.JSON, nullable=False),
        sa.Column("scored", sa.Integer, nullable=False),
        sa.Column("anomalous", sa.Integer, nullable=False),
    )
    op.create_table(
        "series_latest",
        sa.Column("series", sa.String(2048), primary_key=True),
        sa.Column("cluster", sa.String(253), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("written_at", sa.Float, nullable=False),
        sa.Column("forecast", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("score", sa.JSON(none_as_null=True), nullable=True),
    )
    op.create_index("ix_series_latest_cluster_signal", "series_latest", ["cluster", "signal"])
