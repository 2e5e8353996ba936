"""schedule slots

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:40:36.680843
"""

from alembic import op
import sqlalchemy as sa
import tradetrail.db.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('schedule_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=False),
    sa.Column('scheduled_for', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_by', sa.String(length=100), nullable=False),
    sa.Column('claimed_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_schedule_slots_strategy_id_strategies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_slots')),
    sa.UniqueConstraint('strategy_id', 'scheduled_for', name='uq_schedule_slots_strategy_time')
    )


def downgrade() -> None:
    op.drop_table('schedule_slots')
