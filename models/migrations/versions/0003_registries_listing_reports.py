"""mediator availability; indexes for listing and reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mediator", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("working_hours", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("unavailable", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )

    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_received", ["received_on", "local_authority"], unique=False
        )
        batch_op.create_index(
            "ix_referral_la_status_next",
            ["local_authority", "status", "next_deadline_on", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_referral_breached_next", ["breached", "next_deadline_on", "id"], unique=False
        )

    with op.batch_alter_table("referral_event", schema=None) as batch_op:
        batch_op.create_index("ix_referral_event_type_on", ["type", "occurred_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral_event", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_event_type_on")

    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_breached_next")
        batch_op.drop_index("ix_referral_la_status_next")
        batch_op.drop_index("ix_referral_received")

    with op.batch_alter_table("mediator", schema=None) as batch_op:
        batch_op.drop_column("unavailable")
        batch_op.drop_column("working_hours")
