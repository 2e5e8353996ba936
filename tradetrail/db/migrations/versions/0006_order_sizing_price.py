"""order sizing price: the price an entry was sized at and its slippage allowance

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sized_price', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('price_allowance_pct', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('price_allowance_pct')
        batch_op.drop_column('sized_price')
