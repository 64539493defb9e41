"""schedules: tag schedules (a hunting query on a cadence) and their runs, one row per occurrence

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('schedules',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=200), nullable=False),
    sa.Column('kql', sa.Text(), nullable=False),
    sa.Column('cadence', sa.String(length=100), nullable=False),
    sa.Column('sync', sa.Boolean(), nullable=False),
    sa.Column('include_protected', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_by_label', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('next_run_at', TZ, nullable=True),
    sa.Column('last_run_at', TZ, nullable=True),
    sa.Column('last_result', sa.JSON(), nullable=True),
    sa.Column('origin_surface', sa.String(length=32), nullable=False),
    sa.Column('origin_channel', sa.String(length=200), nullable=False),
    sa.Column('origin_context', sa.Text(), nullable=True),
    sa.Column('created_at', TZ, nullable=False),
    sa.Column('activated_at', TZ, nullable=True),
    sa.Column('removed_at', TZ, nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_schedules_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules')),
    )
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.create_index('ix_schedules_active_next', ['active', 'next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_schedules_request_id'), ['request_id'], unique=False)

    op.create_table('schedule_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('due_at', TZ, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=True),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('claimed_at', TZ, nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('found', sa.Integer(), nullable=False),
    sa.Column('added', sa.Integer(), nullable=False),
    sa.Column('already_tagged', sa.Integer(), nullable=False),
    sa.Column('removed', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('finished_at', TZ, nullable=True),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'], name=op.f('fk_schedule_runs_schedule_id_schedules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_runs')),
    sa.UniqueConstraint('schedule_id', 'due_at', name=op.f('uq_schedule_runs_schedule_id')),
    )
    with op.batch_alter_table('schedule_runs', schema=None) as batch_op:
        batch_op.create_index('ix_schedule_runs_state', ['state'], unique=False)


def downgrade() -> None:
    op.drop_table('schedule_runs')
    op.drop_table('schedules')
