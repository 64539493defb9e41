"""request device view indexes: a card's counts and first rows without reading every device (issue 18)

ix_request_devices_request_counts (request_id, state, protection, priority) answers a view's GROUP BY from
the index alone and replaces ix_request_devices_request_state, its prefix; ix_request_devices_request_name
gives the first rows by name and the CSV's pages without sorting every device.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 13:15:00.000000
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_devices', schema=None) as batch_op:
        batch_op.create_index(
            'ix_request_devices_request_counts', ['request_id', 'state', 'protection', 'priority'], unique=False
        )
        batch_op.create_index('ix_request_devices_request_name', ['request_id', 'name', 'id'], unique=False)
        batch_op.drop_index('ix_request_devices_request_state')


def downgrade() -> None:
    with op.batch_alter_table('request_devices', schema=None) as batch_op:
        batch_op.create_index('ix_request_devices_request_state', ['request_id', 'state'], unique=False)
        batch_op.drop_index('ix_request_devices_request_name')
        batch_op.drop_index('ix_request_devices_request_counts')
