"""notifications: channels (encrypted Apprise URLs), the outbox of events, deliveries and attempts (issue #15)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import tradetrail.db.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notify_channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('redacted', sa.String(length=200), nullable=False),
    sa.Column('events', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notify_channels_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_channels'))
    )
    op.create_index(op.f('ix_notify_channels_user_id'), 'notify_channels', ['user_id'], unique=False)
    op.create_table('notify_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=300), nullable=False),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.Column('fanned_out', sa.Boolean(), nullable=False),
    sa.Column('created_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notify_events_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_events')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notify_events_dedupe_key'))
    )
    op.create_index('ix_notify_events_fanned_out_id', 'notify_events', ['fanned_out', 'id'], unique=False)
    op.create_index(op.f('ix_notify_events_user_id'), 'notify_events', ['user_id'], unique=False)
    op.create_index(op.f('ix_notify_events_created_at'), 'notify_events', ['created_at'], unique=False)
    op.create_table('notify_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', tradetrail.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('delivered_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['notify_channels.id'], name=op.f('fk_notify_deliveries_channel_id_notify_channels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['notify_events.id'], name=op.f('fk_notify_deliveries_event_id_notify_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_deliveries')),
    sa.UniqueConstraint('event_id', 'channel_id', name='uq_notify_deliveries_event_channel')
    )
    op.create_index('ix_notify_deliveries_status_next', 'notify_deliveries', ['status', 'next_at'], unique=False)
    op.create_index(op.f('ix_notify_deliveries_channel_id'), 'notify_deliveries', ['channel_id'], unique=False)
    op.create_table('notify_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=100), nullable=False),
    sa.Column('started_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', tradetrail.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['notify_deliveries.id'], name=op.f('fk_notify_attempts_delivery_id_notify_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_attempts'))
    )
    op.create_index(op.f('ix_notify_attempts_delivery_id'), 'notify_attempts', ['delivery_id'], unique=False)


def downgrade() -> None:
    op.drop_table('notify_attempts')
    op.drop_table('notify_deliveries')
    op.drop_table('notify_events')
    op.drop_table('notify_channels')
