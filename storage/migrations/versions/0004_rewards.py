"""rewards: milestones, pools and codes, grants, progress, flows

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("data", sa.Text(), server_default="{}", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "user_id", name=op.f("pk_flows")),
    )
    op.create_table(
        "grants",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", Id, nullable=False),
        sa.Column("reader_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("source_id", Id, nullable=False),
        sa.Column("occurrence", sa.Integer(), server_default="1", nullable=False),
        sa.Column("milestone_id", Id, nullable=True),
        sa.Column("rung", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reward_kind", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("cost_cents", sa.Integer(), nullable=True),
        sa.Column("code_id", Id, nullable=True),
        sa.Column("access_url", sa.String(length=256), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("delivery_key", sa.String(length=64), nullable=True),
        sa.Column("delivery_error", sa.String(length=256), nullable=True),
        sa.Column("held", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fulfilled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_grants_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index("ix_grants_access", ["access_url"], unique=False)
        batch_op.create_index("ix_grants_delivery", ["delivery_key"], unique=False)
        batch_op.create_index("ix_grants_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_grants_reader", ["program_id", "reader_id"], unique=False)
        batch_op.create_index(
            "uq_grants_source",
            ["program_id", "reader_id", "source", "source_id", "occurrence"],
            unique=True,
        )

    op.create_table(
        "milestones",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", Id, nullable=False),
        sa.Column("role", sa.String(length=12), server_default="milestone", nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("reward_kind", sa.String(length=12), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("pool_id", Id, nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("chat_title", sa.String(length=256), nullable=True),
        sa.Column("question", sa.String(length=512), nullable=True),
        sa.Column("role_id", sa.BigInteger(), nullable=True),
        sa.Column("approval", sa.String(length=8), server_default="auto", nullable=False),
        sa.Column("cost_cents", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "approval IN ('auto', 'manual', 'semi')", name=op.f("ck_milestones_milestone_approval")
        ),
        sa.CheckConstraint(
            "reward_kind IN ('message', 'coupon', 'chat', 'manual', 'role')",
            name=op.f("ck_milestones_reward_kind"),
        ),
        sa.CheckConstraint(
            "role IN ('milestone', 'friend', 'prize')", name=op.f("ck_milestones_milestone_role")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_milestones_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestones")),
    )
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.create_index("ix_milestones_program", ["program_id", "role"], unique=False)

    op.create_table(
        "reward_pools",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", Id, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("low_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("empty_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_reward_pools_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_pools")),
    )
    op.create_table(
        "reward_progress",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("reader_id", sa.BigInteger(), nullable=False),
        sa.Column("rewardable", sa.Integer(), server_default="0", nullable=False),
        sa.Column("highest", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_reward_progress_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", "reader_id", name=op.f("pk_reward_progress")),
    )
    op.create_table(
        "reward_referrals",
        sa.Column("program_id", Id, nullable=False),
        sa.Column("referred_id", sa.BigInteger(), nullable=False),
        sa.Column("reader_id", sa.BigInteger(), nullable=False),
        sa.Column("rewardable", sa.Boolean(), nullable=False),
        sa.Column("held", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_reward_referrals_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", "referred_id", name=op.f("pk_reward_referrals")),
    )
    with op.batch_alter_table("reward_referrals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reward_referrals_reader", ["program_id", "reader_id", "confirmed_at"], unique=False
        )

    op.create_table(
        "reward_codes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("pool_id", Id, nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("grant_id", Id, nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["reward_pools.id"],
            name=op.f("fk_reward_codes_pool_id_reward_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_codes")),
    )
    with op.batch_alter_table("reward_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reward_codes_free",
            ["pool_id", "id"],
            unique=False,
            sqlite_where=sa.text("grant_id IS NULL"),
            postgresql_where=sa.text("grant_id IS NULL"),
        )
        batch_op.create_index("uq_reward_codes_code", ["pool_id", "code"], unique=True)
        batch_op.create_index("uq_reward_codes_grant", ["grant_id"], unique=True)

    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reward_cap", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "reward_cap_period", sa.String(length=8), server_default="year", nullable=False
            )
        )
        batch_op.add_column(sa.Column("currency", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("currency")
        batch_op.drop_column("reward_cap_period")
        batch_op.drop_column("reward_cap")

    with op.batch_alter_table("reward_codes", schema=None) as batch_op:
        batch_op.drop_index("uq_reward_codes_grant")
        batch_op.drop_index("uq_reward_codes_code")
        batch_op.drop_index(
            "ix_reward_codes_free",
            sqlite_where=sa.text("grant_id IS NULL"),
            postgresql_where=sa.text("grant_id IS NULL"),
        )

    op.drop_table("reward_codes")
    with op.batch_alter_table("reward_referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_reward_referrals_reader")

    op.drop_table("reward_referrals")
    op.drop_table("reward_progress")
    op.drop_table("reward_pools")
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_index("ix_milestones_program")

    op.drop_table("milestones")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("uq_grants_source")
        batch_op.drop_index("ix_grants_reader")
        batch_op.drop_index("ix_grants_due")
        batch_op.drop_index("ix_grants_delivery")
        batch_op.drop_index("ix_grants_access")

    op.drop_table("grants")
    op.drop_table("flows")
