"""containments: the containment register, each device's containment timeline, the reconciliation cursor

Revision ID: 0008
Revises: 0009
Create Date: 2026-12-02 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('containments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('machine_id', sa.String(length=64), nullable=False),
    sa.Column('open_key', sa.String(length=64), nullable=True),
    sa.Column('device_name', sa.String(length=300), nullable=False),
    sa.Column('isolation_type', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', sa.String(length=200), nullable=True),
    sa.Column('requested_by', sa.String(length=300), nullable=False),
    sa.Column('approved_by', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('isolated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('planned_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mde_state', sa.String(length=16), nullable=False),
    sa.Column('mde_action_id', sa.String(length=64), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=300), nullable=True),
    sa.Column('release_request_id', sa.Integer(), nullable=True),
    sa.Column('adopted_by', sa.String(length=300), nullable=True),
    sa.Column('release_proposal_id', sa.Integer(), nullable=True),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=300), nullable=True),
    sa.Column('acknowledged_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_containments_request_id_requests'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_containments')),
    sa.UniqueConstraint('open_key', name=op.f('uq_containments_open_key')),
    )
    with op.batch_alter_table('containments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_containments_machine_id'), ['machine_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_containments_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_containments_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_containments_released_isolated', ['released_at', 'isolated_at'], unique=False)

    op.create_table('containment_timeline',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('machine_id', sa.String(length=64), nullable=False),
    sa.Column('device_name', sa.String(length=300), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=300), nullable=True),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('action_id', sa.String(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_containment_timeline')),
    sa.UniqueConstraint('action_id', name=op.f('uq_containment_timeline_action_id')),
    )
    with op.batch_alter_table('containment_timeline', schema=None) as batch_op:
        batch_op.create_index('ix_containment_timeline_machine_at', ['machine_id', 'at'], unique=False)

    op.create_table('containment_reconcile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('read_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_calls', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_containment_reconcile')),
    )


def downgrade() -> None:
    op.drop_table('containment_reconcile')
    with op.batch_alter_table('containment_timeline', schema=None) as batch_op:
        batch_op.drop_index('ix_containment_timeline_machine_at')
    op.drop_table('containment_timeline')
    with op.batch_alter_table('containments', schema=None) as batch_op:
        batch_op.drop_index('ix_containments_released_isolated')
        batch_op.drop_index(batch_op.f('ix_containments_incident_id'))
        batch_op.drop_index(batch_op.f('ix_containments_request_id'))
        batch_op.drop_index(batch_op.f('ix_containments_machine_id'))
    op.drop_table('containments')
