"""Customers and their numbers, complaints with their audit trail, post-call surveys, the audit log;
``contacts`` gains ``customer_id`` and ``anonymised_at``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Only adds: new tables, two nullable columns and an index on ``contacts`` (batch mode on SQLite,
where adding nullable columns needs no table rebuild). Existing rows keep every value.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same as contacts.models.JSONType, spelt out so this file never changes with the models.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("customer_id", sa.String(32), nullable=True))
        batch.add_column(_ts("anonymised_at"))
        batch.create_index("ix_contacts_customer_id", ["customer_id"])

    op.create_table(
        "customers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("segment", sa.String(32), nullable=True),
        sa.Column("products", JSON, nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("consents", JSON, nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "customer_phones",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_customer_phones")),
    )
    op.create_index("ix_customer_phones_customer_id", "customer_phones", ["customer_id"])

    op.create_table(
        "complaints",
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("contact_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(32), nullable=True),
        sa.Column("caller", sa.String(32), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("recording", sa.String(255), nullable=True),
        _ts("received_at", nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        _ts("updated_at", nullable=False),
        _ts("resolved_at"),
        _ts("closed_at"),
        _ts("anonymised_at"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_complaints_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_complaints")),
        sa.UniqueConstraint("contact_id", "category", name=op.f("uq_complaints_contact_id_category")),
    )
    op.create_index("ix_complaints_status_due_on", "complaints", ["status", "due_on"])
    op.create_index("ix_complaints_customer_id", "complaints", ["customer_id"])
    op.create_index("ix_complaints_caller", "complaints", ["caller"])
    op.create_index("ix_complaints_owner", "complaints", ["owner"])
    op.create_index("ix_complaints_received_at", "complaints", ["received_at"])

    op.create_table(
        "complaint_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("complaint_number", sa.String(16), nullable=False),
        _ts("at", nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["complaint_number"],
            ["complaints.number"],
            name=op.f("fk_complaint_events_complaint_number_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_events")),
    )
    op.create_index("ix_complaint_events_complaint_number", "complaint_events", ["complaint_number"])

    op.create_table(
        "surveys",
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("solved", sa.Boolean(), nullable=True),
        _ts("recorded_at", nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name=op.f("ck_surveys_score_range")),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_surveys_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_surveys")),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _ts("at", nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    # Only for development; upgrade() never calls this.
    op.drop_table("audit_log")
    op.drop_table("surveys")
    op.drop_table("complaint_events")
    op.drop_table("complaints")
    op.drop_table("customer_phones")
    op.drop_table("customers")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_index("ix_contacts_customer_id")
        batch.drop_column("anonymised_at")
        batch.drop_column("customer_id")
