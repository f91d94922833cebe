"""The live replicas of a sharded fleet: shard, the fleet size each runs with, when it started and was last seen
(so that replicas of two fleet sizes never model the same series: intelligence/storage/fleet_members.py).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_members",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("shard_count", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_members")
