"""Initial schema: contacts (one row per call leg) and parcels (tracking self-service).

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The contacts table carries every column the roadmap needs (queue, operator, wrap-up, recording),
so later revisions should rarely have to touch it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same as contacts.models.JSONType, spelt out so this file never changes with the models.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(128), nullable=False),
        sa.Column("caller", sa.String(64), nullable=True),
        sa.Column("dialled", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        _ts("started_at", nullable=False),
        _ts("ivr_ended_at"),
        _ts("queued_at"),
        _ts("answered_at"),
        _ts("ended_at"),
        sa.Column("ivr_path", JSON, nullable=False),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("tier", sa.String(32), nullable=True),
        sa.Column("operator", sa.String(64), nullable=True),
        sa.Column("routing_reason", sa.String(128), nullable=True),
        sa.Column("disposition", sa.String(64), nullable=True),
        sa.Column("wrapup_code", sa.String(64), nullable=True),
        sa.Column("recording", sa.String(255), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("node", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index("ix_contacts_started_at", "contacts", ["started_at"])
    op.create_index("ix_contacts_caller", "contacts", ["caller"])
    op.create_table(
        "parcels",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        _ts("updated_at", nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_parcels")),
    )


def downgrade() -> None:
    # Only for development; upgrade() never calls this.
    op.drop_table("parcels")
    op.drop_index("ix_contacts_caller", table_name="contacts")
    op.drop_index("ix_contacts_started_at", table_name="contacts")
    op.drop_table("contacts")
