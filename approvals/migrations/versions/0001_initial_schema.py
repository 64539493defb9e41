"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 02:47:11.966779
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('actor_key', sa.String(length=200), nullable=False),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('actor_email', sa.String(length=320), nullable=True),
    sa.Column('surface', sa.String(length=32), nullable=True),
    sa.Column('channel_id', sa.String(length=200), nullable=True),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('verb', sa.String(length=32), nullable=True),
    sa.Column('devices', sa.JSON(), nullable=False),
    sa.Column('action_ids', sa.JSON(), nullable=False),
    sa.Column('outcome', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_request_id'), ['request_id'], unique=False)

    op.create_table('delivery_cursors',
    sa.Column('surface', sa.String(length=32), nullable=False),
    sa.Column('last_event_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('surface', name=op.f('pk_delivery_cursors'))
    )
    op.create_table('requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('verb', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('requester_key', sa.String(length=200), nullable=False),
    sa.Column('requester_label', sa.String(length=200), nullable=False),
    sa.Column('requester_email', sa.String(length=320), nullable=True),
    sa.Column('origin_surface', sa.String(length=32), nullable=False),
    sa.Column('origin_channel', sa.String(length=200), nullable=False),
    sa.Column('origin_context', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('target_text', sa.Text(), nullable=False),
    sa.Column('required_approvals', sa.Integer(), nullable=False),
    sa.Column('touches_protected', sa.Boolean(), nullable=False),
    sa.Column('break_glass_by', sa.String(length=200), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('canary', sa.Integer(), nullable=True),
    sa.Column('incident_id', sa.String(length=200), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summarized_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome_note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_requests'))
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requests_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_state'), ['state'], unique=False)

    op.create_table('workers',
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('owner', name=op.f('pk_workers'))
    )
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workers_heartbeat_at'), ['heartbeat_at'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('actor_key', sa.String(length=200), nullable=False),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('actor_email', sa.String(length=320), nullable=True),
    sa.Column('approve', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('break_glass', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_decisions_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions')),
    sa.UniqueConstraint('request_id', 'actor_key', name=op.f('uq_decisions_request_id'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_request_id'), ['request_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_events_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_request_id'), ['request_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('machine_ids', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('canary', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action_id', sa.String(length=64), nullable=True),
    sa.Column('mde_status', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_jobs_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_action_id'), ['action_id'], unique=False)
        batch_op.create_index('ix_jobs_request', ['request_id', 'state'], unique=False)
        batch_op.create_index('ix_jobs_state_next', ['state', 'next_attempt_at'], unique=False)

    op.create_table('message_refs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('surface', sa.String(length=32), nullable=False),
    sa.Column('channel_id', sa.String(length=200), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('context', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_message_refs_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_refs')),
    sa.UniqueConstraint('request_id', 'surface', name=op.f('uq_message_refs_request_id'))
    )
    op.create_table('request_devices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('os_platform', sa.String(length=64), nullable=True),
    sa.Column('health_status', sa.String(length=64), nullable=True),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('group_name', sa.String(length=300), nullable=True),
    sa.Column('protection', sa.String(length=16), nullable=False),
    sa.Column('warning', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=True),
    sa.Column('action_id', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_request_devices_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_devices')),
    sa.UniqueConstraint('request_id', 'machine_id', name=op.f('uq_request_devices_request_id'))
    )
    with op.batch_alter_table('request_devices', schema=None) as batch_op:
        batch_op.create_index('ix_request_devices_request_state', ['request_id', 'state'], unique=False)

    op.create_table('request_exclusions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_request_exclusions_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_exclusions'))
    )
    with op.batch_alter_table('request_exclusions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_exclusions_request_id'), ['request_id'], unique=False)

    


    if op.get_bind().dialect.name == "postgresql":
        # the audit log is append-only: refuse UPDATE and DELETE at the database itself
        op.execute(
            """
            CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    
    with op.batch_alter_table('request_exclusions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_exclusions_request_id'))

    op.drop_table('request_exclusions')
    with op.batch_alter_table('request_devices', schema=None) as batch_op:
        batch_op.drop_index('ix_request_devices_request_state')

    op.drop_table('request_devices')
    op.drop_table('message_refs')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_state_next')
        batch_op.drop_index('ix_jobs_request')
        batch_op.drop_index(batch_op.f('ix_jobs_action_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_request_id'))

    op.drop_table('events')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_request_id'))

    op.drop_table('decisions')
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workers_heartbeat_at'))

    op.drop_table('workers')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requests_state'))
        batch_op.drop_index(batch_op.f('ix_requests_incident_id'))

    op.drop_table('requests')
    op.drop_table('delivery_cursors')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_request_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    
