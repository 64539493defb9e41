"""incident workspace: Sentinel incident numbers are per workspace, so incidents are keyed by
(source, workspace, external id)

Revision ID: 0006
Revises: 0010
Create Date: 2026-12-02 10:15:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workspace', sa.String(length=300), server_default='', nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_incidents_source'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_incidents_source'), ['source', 'workspace', 'external_id'])


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_incidents_source'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_incidents_source'), ['source', 'external_id'])
        batch_op.drop_column('workspace')
