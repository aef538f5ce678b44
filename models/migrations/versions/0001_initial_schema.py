"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "idempotency_record",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "key"),
    )
    op.create_table(
        "mediator",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("send_trained", sa.Boolean(), nullable=False),
        sa.Column("accreditation", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("conflict_local_authorities", sa.JSON(), nullable=False),
        sa.Column("conflict_organisations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "meeting_reservation",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("meeting_id", sa.String(length=64), nullable=False),
        sa.Column("mediator_id", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "meeting_id"),
    )
    with op.batch_alter_table("meeting_reservation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_reservation_mediator_id"), ["mediator_id"], unique=False
        )

    op.create_table(
        "notification",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "referral",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("local_authority", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_deadline_on", sa.Date(), nullable=True),
        sa.Column("next_deadline_name", sa.String(length=64), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("certificate_kind", sa.String(length=32), nullable=True),
        sa.Column("certificate_issued_on", sa.Date(), nullable=True),
        sa.Column("appeal_deadline", sa.Date(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_breached"), ["breached"], unique=False)
        batch_op.create_index("ix_referral_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_referral_la_next", ["local_authority", "next_deadline_on", "id"], unique=False
        )
        batch_op.create_index("ix_referral_next", ["next_deadline_on", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_route"), ["route"], unique=False)
        batch_op.create_index(
            "ix_referral_status_next", ["status", "next_deadline_on", "id"], unique=False
        )

    op.create_table(
        "referral_event",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "seq"),
    )
    op.create_table(
        "venue",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=1000), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("neutral", sa.Boolean(), nullable=False),
        sa.Column("accessibility", sa.String(length=2000), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:

    op.drop_table("venue")
    op.drop_table("referral_event")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_status_next")
        batch_op.drop_index(batch_op.f("ix_referral_route"))
        batch_op.drop_index("ix_referral_next")
        batch_op.drop_index("ix_referral_la_next")
        batch_op.drop_index("ix_referral_created")
        batch_op.drop_index(batch_op.f("ix_referral_breached"))

    op.drop_table("referral")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_referral_id"))

    op.drop_table("notification")
    with op.batch_alter_table("meeting_reservation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_reservation_mediator_id"))

    op.drop_table("meeting_reservation")
    op.drop_table("mediator")
    op.drop_table("idempotency_record")
