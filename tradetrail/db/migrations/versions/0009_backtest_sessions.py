"""backtest sessions: a backtest's session re-run through the 13 steps on an account of its own (issue #14)

One row per backtest and session (unique), naming the re-run's execution and its simulated account, so
asking twice opens the same execution.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa
import tradetrail.db.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backtest_sessions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('backtest_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session', sa.Date(), nullable=False),
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('created_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['backtest_id'], ['backtests.id'], name=op.f('fk_backtest_sessions_backtest_id_backtests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['id'], ['executions.id'], name=op.f('fk_backtest_sessions_id_executions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_backtest_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backtest_sessions')),
    sa.UniqueConstraint('account', name=op.f('uq_backtest_sessions_account')),
    sa.UniqueConstraint('backtest_id', 'session', name='uq_backtest_sessions_backtest_session')
    )
    with op.batch_alter_table('backtest_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backtest_sessions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('backtest_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backtest_sessions_user_id'))

    op.drop_table('backtest_sessions')
