"""Routing reasons are whole sentences ("op1003: bancoposta 8 >= 7, idle 42 s (best of 3 ...)"):
``contacts.routing_reason`` becomes unbounded text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column("routing_reason", type_=sa.Text(), existing_type=sa.String(128), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column("routing_reason", type_=sa.String(128), existing_type=sa.Text(), existing_nullable=True)
