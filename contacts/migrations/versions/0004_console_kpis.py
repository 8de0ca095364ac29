"""Console and KPIs (issue 5): what the reports need and the per-user API tokens.

- ``contacts.talk_ended_at``: when the conversation with the operator ended (the caller may stay
  for the survey, so ``ended_at`` is not the end of talk time);
- ``contacts.wrapup_ended_at``: when the operator left wrap-up for this contact (handle time is
  talk + hold + wrap-up);
- ``contacts.estimated_wait``: the first estimated wait announced to the caller, in seconds, for the
  estimated-wait accuracy KPI;
- ``agent_states``: one row per operator state interval (occupancy, agent activity);
- ``api_users``: per-user API tokens (SHA-256 at rest) with a role.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(_ts("talk_ended_at", nullable=True))
        batch.add_column(_ts("wrapup_ended_at", nullable=True))
        batch.add_column(sa.Column("estimated_wait", sa.Integer(), nullable=True))
        batch.create_index("ix_contacts_operator", ["operator"])
    op.create_table(
        "agent_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("call_id", sa.String(64), nullable=True),
        _ts("started_at", nullable=False),
        _ts("ended_at", nullable=True),
        sa.Column("node", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_states")),
    )
    op.create_index("ix_agent_states_agent_started_at", "agent_states", ["agent", "started_at"])
    op.create_index("ix_agent_states_started_at", "agent_states", ["started_at"])
    op.create_table(
        "api_users",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(80), nullable=False),
        sa.Column("operator", sa.String(64), nullable=True),
        _ts("created_at", nullable=False),
        _ts("disabled_at", nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_api_users")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_users_token_hash")),
        sa.CheckConstraint("role IN ('admin', 'supervisor', 'operator')", name=op.f("ck_api_users_role")),
    )


def downgrade() -> None:
    op.drop_table("api_users")
    op.drop_index("ix_agent_states_started_at", table_name="agent_states")
    op.drop_index("ix_agent_states_agent_started_at", table_name="agent_states")
    op.drop_table("agent_states")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_index("ix_contacts_operator")
        batch.drop_column("estimated_wait")
        batch.drop_column("wrapup_ended_at")
        batch.drop_column("talk_ended_at")
