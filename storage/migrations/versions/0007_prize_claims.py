"""prize claims: how long a season prize waits for a winner the bot cannot message

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-16
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_expires_at", sa.DateTime(timezone=True)))
        batch_op.create_index(
            "ix_grants_claims",
            ["state", "claim_expires_at"],
            unique=False,
            sqlite_where=sa.text("claim_expires_at IS NOT NULL"),
            postgresql_where=sa.text("claim_expires_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_claims")
        batch_op.drop_column("claim_expires_at")
