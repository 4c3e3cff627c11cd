"""boards: board settings, readers, counts, histogram, seasons

Revision ID: 0006
Revises: 0004 (re-chained onto the Discord migration 0005 at merge)
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _program_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["program_id"],
        ["programs.id"],
        name=op.f(f"fk_{table}_program_id_programs"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "board_settings",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("public_names", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("week_start", sa.Integer(), server_default="0", nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=True),
        sa.Column("schedule_period", sa.String(length=8), server_default="week", nullable=False),
        sa.Column("post_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("set_by", sa.BigInteger(), nullable=True),
        sa.Column("last_slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _program_fk("board_settings"),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_board_settings")),
    )
    op.create_table(
        "board_readers",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("reader_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("excluded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("excluded_by", sa.BigInteger(), nullable=True),
        sa.Column("excluded_at", sa.DateTime(timezone=True), nullable=True),
        _program_fk("board_readers"),
        sa.PrimaryKeyConstraint("program_id", "reader_id", name=op.f("pk_board_readers")),
    )
    with op.batch_alter_table("board_readers", schema=None) as batch_op:
        batch_op.create_index("uq_board_readers_number", ["program_id", "number"], unique=True)
    op.create_table(
        "board_counts",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("reader_id", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tiebreak", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("excluded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _program_fk("board_counts"),
        sa.PrimaryKeyConstraint("program_id", "period", "reader_id", name=op.f("pk_board_counts")),
    )
    with op.batch_alter_table("board_counts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_board_counts_rank", ["program_id", "period", "count", "tiebreak"], unique=False
        )
        batch_op.create_index("ix_board_counts_reader", ["program_id", "reader_id"], unique=False)
    op.create_table(
        "board_histogram",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("readers", sa.Integer(), nullable=False),
        _program_fk("board_histogram"),
        sa.PrimaryKeyConstraint("program_id", "period", "count", name=op.f("pk_board_histogram")),
    )
    op.create_table(
        "seasons",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", Id, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.String(length=8), server_default="top", nullable=False),
        sa.Column("winners", sa.Integer(), server_default="3", nullable=False),
        sa.Column("min_referrals", sa.Integer(), server_default="1", nullable=False),
        sa.Column("prize_id", Id, nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("seed_hash", sa.String(length=64), nullable=True),
        sa.Column("results", sa.Text(), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prizes_granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('top', 'draw')", name=op.f("ck_seasons_season_mode")),
        _program_fk("seasons"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seasons")),
    )
    with op.batch_alter_table("seasons", schema=None) as batch_op:
        batch_op.create_index("ix_seasons_program", ["program_id", "ends_at"], unique=False)


def downgrade() -> None:
    op.drop_table("seasons")
    op.drop_table("board_histogram")
    op.drop_table("board_counts")
    op.drop_table("board_readers")
    op.drop_table("board_settings")
