"""councils and providers, seeded with Hertfordshire and Kids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    provider = op.create_table(
        "provider",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("address", sa.String(length=1000), nullable=True),
        sa.Column("office_hours", sa.String(length=200), nullable=False),
        sa.Column("referral_action_working_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    council = op.create_table(
        "local_authority",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("icbs", sa.JSON(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["provider.id"]),
        sa.PrimaryKeyConstraint("code"),
    )
    now = datetime(2026, 11, 28, tzinfo=UTC)
    # From the seed page: Hertfordshire County Council's provider is Kids.
    op.bulk_insert(
        provider,
        [
            {
                "id": "kids",
                "name": "Kids SEND Mediation and Disagreement Resolution Service",
                "phone": "03330 062 835",
                "email": "senmediation@kids.org.uk",
                "website": "https://www.kids.org.uk",
                "address": None,
                "office_hours": "Monday to Friday, 9am to 5pm",
                "referral_action_working_days": 5,
                "created_at": now,
            }
        ],
    )
    op.bulk_insert(
        council,
        [
            {
                "code": "E10000015",
                "name": "Hertfordshire County Council",
                "icbs": ["NHS Hertfordshire and West Essex Integrated Care Board"],
                "provider_id": "kids",
                "active": True,
                "created_at": now,
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("local_authority")
    op.drop_table("provider")
