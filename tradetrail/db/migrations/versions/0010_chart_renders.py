"""chart renders: drawn charts by render key, shared across processes and restarts (issue #12, performance)

One row per render key naming the PNG artifact, so a process that has not drawn a chart yet finds the one
another process (or an earlier run of this one) drew, instead of drawing it again (~110 ms of CPU each).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa
import tradetrail.db.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chart_renders',
    sa.Column('render_key', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sha256'], ['artifacts.sha256'], name=op.f('fk_chart_renders_sha256_artifacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('render_key', name=op.f('pk_chart_renders'))
    )


def downgrade() -> None:
    op.drop_table('chart_renders')
