"""registry audit trail; webhook subscriptions that fail are disabled; sealed secrets;
idempotency records keyed by the API key's id

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01

- ``registry_change``: who changed which registry entry, when, and each field before/after.
- ``webhook_subscriber_health``: deliveries in a row that failed for good, per subscription
  (a subscriber that keeps failing is disabled, and why). A table of its own: this revision
  sits on the 0005 branch and does not alter 0004's tables. Webhook secrets are sealed with
  the codec key in place (they fit the column); existing plaintext ones stay readable and are
  sealed by the worker on start (``models.secrets.seal_webhook_secrets``): a migration has no
  codec key.
- ``idempotency_record.client_id`` held the key's client *name*, which need not be unique; it
  now holds the key's id. Rows whose name belongs to exactly one key are rewritten to that
  key's id, so a retry across the upgrade still finds its first answer; the others are left
  to the 30-day purge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BY_UNIQUE_NAME = """
UPDATE idempotency_record SET client_id = (
    SELECT k.key_id FROM api_key k WHERE k.name = idempotency_record.client_id
)
WHERE (SELECT count(*) FROM api_key k WHERE k.name = idempotency_record.client_id) = 1
"""


def upgrade() -> None:
    op.create_table(
        "registry_change",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_key_id", sa.String(length=32), nullable=False),
        sa.Column("actor_name", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("registry_change", schema=None) as batch_op:
        batch_op.create_index("ix_registry_change_entry", ["kind", "entry_id", "seq"], unique=False)

    op.create_table(
        "webhook_subscriber_health",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id"),
    )

    op.execute(sa.text(_BY_UNIQUE_NAME))


def downgrade() -> None:
    op.drop_table("webhook_subscriber_health")
    with op.batch_alter_table("registry_change", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_change_entry")
    op.drop_table("registry_change")
