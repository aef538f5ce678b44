"""Party links: personal links in emails, and the link pages' rate limit (issue 16).

- ``party_link``: one row per link (only the token's SHA-256 is looked up; the sealed token is
  kept until its email's delivery has settled), what it decides, until when, and what came of it.
- ``page_rate``: requests to the link pages per client and minute, shared by API processes.

Revision ID: 0009
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "party_link",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("token_sealed", sa.String(length=200), nullable=True),
        sa.Column("send_key", sa.String(length=255), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("slot", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided", sa.JSON(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("send_key"),
        sa.UniqueConstraint("token_sha256"),
    )
    with op.batch_alter_table("party_link", schema=None) as batch_op:
        batch_op.create_index("ix_party_link_slot", ["referral_id", "slot"], unique=False)

    op.create_table(
        "page_rate",
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
    )
    with op.batch_alter_table("page_rate", schema=None) as batch_op:
        batch_op.create_index("ix_page_rate_window_start", ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("page_rate", schema=None) as batch_op:
        batch_op.drop_index("ix_page_rate_window_start")
    op.drop_table("page_rate")
    with op.batch_alter_table("party_link", schema=None) as batch_op:
        batch_op.drop_index("ix_party_link_slot")
    op.drop_table("party_link")
