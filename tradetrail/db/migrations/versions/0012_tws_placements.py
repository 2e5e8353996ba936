"""tws_placements: the TWS adapter's never-answered placement marks, shared by every process (issue #16)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa
import tradetrail.db.types

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tws_placements',
    sa.Column('client_order_id', sa.String(length=40), nullable=False),
    sa.Column('sent_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('perm_id', sa.BigInteger(), nullable=True),
    sa.Column('expired_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('looks', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('client_order_id', name=op.f('pk_tws_placements'))
    )


def downgrade() -> None:
    op.drop_table('tws_placements')
