"""incidents: notifications, their feed and war-room threads, refused webhook bodies, known conversations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('severity', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('product', sa.String(length=200), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('entity_kinds', sa.JSON(), nullable=False),
    sa.Column('devices', sa.JSON(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.Column('created_at', TZ, nullable=False),
    sa.Column('updated_at', TZ, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('source', 'external_id', name=op.f('uq_incidents_source')),
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_external_id'), ['external_id'], unique=False)

    op.create_table('incident_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', TZ, nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_events_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_events')),
    )
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_events_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_threads',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('surface', sa.String(length=32), nullable=False),
    sa.Column('channel_id', sa.String(length=200), nullable=False),
    sa.Column('mention', sa.String(length=200), nullable=True),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('context', sa.Text(), nullable=True),
    sa.Column('created_at', TZ, nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_threads_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_threads')),
    sa.UniqueConstraint('incident_id', 'surface', 'channel_id', name=op.f('uq_incident_threads_incident_id')),
    )
    with op.batch_alter_table('incident_threads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_threads_incident_id'), ['incident_id'], unique=False)

    op.create_table('webhook_rejects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('received_at', TZ, nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_rejects')),
    )

    op.create_table('conversations',
    sa.Column('surface', sa.String(length=32), nullable=False),
    sa.Column('channel_id', sa.String(length=200), nullable=False),
    sa.Column('context', sa.Text(), nullable=True),
    sa.Column('updated_at', TZ, nullable=False),
    sa.PrimaryKeyConstraint('surface', 'channel_id', name=op.f('pk_conversations')),
    )

    with op.batch_alter_table('message_refs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread_id', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('message_refs', schema=None) as batch_op:
        batch_op.drop_column('thread_id')
    op.drop_table('conversations')
    op.drop_table('webhook_rejects')
    op.drop_table('incident_threads')
    op.drop_table('incident_events')
    op.drop_table('incidents')
