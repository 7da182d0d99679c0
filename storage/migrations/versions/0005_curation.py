"""The agents' work lists: the review queue, intent-discovery proposals and the nightly digest's postings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("answer_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("guesses", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_items"),
        sa.ForeignKeyConstraint(
            ["answer_id"], ["answers.id"], name="fk_review_items_answer_id_answers", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("answer_id", name="uq_review_items_answer_id"),
    )
    op.create_index("ix_review_items_created_at", "review_items", ["created_at"])
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer_ids", sa.JSON(), nullable=False),
        sa.Column("typical", sa.JSON(), nullable=False),
        sa.Column("cohesion", sa.Float(), nullable=False),
        sa.Column("nearest_intent", sa.String(length=128), nullable=True),
        sa.Column("intent", sa.String(length=128), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_proposals"),
    )
    op.create_index("ix_proposals_status", "proposals", ["status"])
    op.create_index("ix_proposals_created_at", "proposals", ["created_at"])
    op.create_table(
        "postings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_postings"),
        sa.UniqueConstraint("key", name="uq_postings_key"),
    )
    op.create_index("ix_postings_created_at", "postings", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_postings_created_at", table_name="postings")
    op.drop_table("postings")
    op.drop_index("ix_proposals_created_at", table_name="proposals")
    op.drop_index("ix_proposals_status", table_name="proposals")
    op.drop_table("proposals")
    op.drop_index("ix_review_items_created_at", table_name="review_items")
    op.drop_table("review_items")
