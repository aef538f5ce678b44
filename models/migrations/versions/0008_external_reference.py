"""councils' own case references (unique per council) and recipients' own document copies

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "external_reference",
        sa.Column("local_authority", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("local_authority", "reference"),
    )
    op.create_table(
        "document_copy",
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", "recipient"),
    )
    with op.batch_alter_table("document_copy", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_document_copy_sha256"), ["sha256"], unique=False)
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_reference", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_referral_la_reference", ["local_authority", "external_reference"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_la_reference")
        batch_op.drop_column("external_reference")
    with op.batch_alter_table("document_copy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_copy_sha256"))
    op.drop_table("document_copy")
    op.drop_table("external_reference")
