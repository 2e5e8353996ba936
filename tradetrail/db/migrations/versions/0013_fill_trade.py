"""fills.trade_id: the trade a fill was booked to, so a commission reported later is charged to that trade

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('fills') as batch_op:
        batch_op.add_column(sa.Column('trade_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('fills') as batch_op:
        batch_op.drop_column('trade_id')
