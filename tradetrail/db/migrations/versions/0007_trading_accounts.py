"""trading accounts: each replay-clock strategy trades on a simulated account of its own (issue #12)

The registry of the accounts a user trades with, filled from the orders so far (every account an order went
to is the shared account of its user at its broker); trading state scopes grow to hold ``account:<account>``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa
import tradetrail.db.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trading_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('broker', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=True),
    sa.Column('created_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_trading_accounts_strategy_id_strategies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_trading_accounts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_accounts')),
    sa.UniqueConstraint('user_id', 'broker', 'account', name='uq_trading_accounts_user_broker_account')
    )
    with op.batch_alter_table('trading_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trading_accounts_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('trading_states', schema=None) as batch_op:
        batch_op.alter_column('scope', existing_type=sa.String(length=32), type_=sa.String(length=48),
                              existing_nullable=False)

    op.execute("INSERT INTO trading_accounts (user_id, broker, account, kind, created_at) "
               "SELECT DISTINCT user_id, broker, account, 'shared', CURRENT_TIMESTAMP FROM orders")


def downgrade() -> None:
    with op.batch_alter_table('trading_states', schema=None) as batch_op:
        batch_op.alter_column('scope', existing_type=sa.String(length=48), type_=sa.String(length=32),
                              existing_nullable=False)
    with op.batch_alter_table('trading_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trading_accounts_user_id'))
    op.drop_table('trading_accounts')
