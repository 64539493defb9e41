"""incident merges and alert states: the incident a redirected one was merged into (so the survivor's
release on close covers containments taken under the merged one), and each alert's id, status and severity

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 13:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('alerts', sa.JSON(), server_default='[]', nullable=False))
        batch_op.create_index(batch_op.f('ix_incidents_merged_into'), ['merged_into'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_merged_into'))
        batch_op.drop_column('alerts')
        batch_op.drop_column('merged_into')
