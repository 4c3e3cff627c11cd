"""count changes (the state machine's record per reader) and typed outbox payloads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))
    op.create_table(
        "count_changes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", Id, nullable=False),
        sa.Column("reader_id", sa.BigInteger(), nullable=False),
        sa.Column("before", sa.Integer(), nullable=False),
        sa.Column("after", sa.Integer(), nullable=False),
        sa.Column("referred_id", sa.BigInteger(), nullable=True),
        sa.Column("transition", sa.String(length=24), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("manual", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("held", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("milestones_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("boards_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_count_changes_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_count_changes")),
    )
    with op.batch_alter_table("count_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_count_changes_reader", ["program_id", "reader_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_count_changes_milestones",
            ["id"],
            unique=False,
            sqlite_where=sa.text("milestones_at IS NULL"),
            postgresql_where=sa.text("milestones_at IS NULL"),
        )
        batch_op.create_index(
            "ix_count_changes_boards",
            ["id"],
            unique=False,
            sqlite_where=sa.text("boards_at IS NULL"),
            postgresql_where=sa.text("boards_at IS NULL"),
        )


def downgrade() -> None:
    op.drop_table("count_changes")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("payload")
