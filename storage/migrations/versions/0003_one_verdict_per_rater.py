"""One verdict per rater, answer and source (button, reaction, cli): a partial unique index on ratings.

Ratings stored before it could hold the same rater's verdict twice (two identical reactions at once, or `+`
typed twice in the terminal); the newest of each such group is kept, as `set_rating` would have left it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VERDICTS = "source IN ('button', 'reaction', 'cli')"  # storage.models.VERDICT_SOURCES_SQL at this revision


def upgrade() -> None:
    op.execute(
        sa.text(
            f"DELETE FROM ratings WHERE {VERDICTS} AND id NOT IN "
            f"(SELECT max(id) FROM ratings WHERE {VERDICTS} GROUP BY answer_id, rater_id, source)"
        )
    )
    op.create_index(
        "uq_ratings_one_verdict",
        "ratings",
        ["answer_id", "rater_id", "source"],
        unique=True,
        sqlite_where=sa.text(VERDICTS),
        postgresql_where=sa.text(VERDICTS),
    )


def downgrade() -> None:
    op.drop_index("uq_ratings_one_verdict", table_name="ratings")
