"""discord: invite-use tracking, the rewards opt-in, the invite channel, labelled invites

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "invite_uses",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("inviter_id", sa.BigInteger(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_invite_uses_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_invite_uses")),
    )
    op.create_table(
        "invite_sync",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("vanity_uses", sa.Integer(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_invite_sync_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_invite_sync")),
    )
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "rewards_opt_in", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )
        batch_op.add_column(sa.Column("invite_channel_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "labels_allowed", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("labels_allowed")
        batch_op.drop_column("invite_channel_id")
        batch_op.drop_column("rewards_opt_in")
    op.drop_table("invite_sync")
    op.drop_table("invite_uses")
