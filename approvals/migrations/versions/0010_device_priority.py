"""device priority: the order a request's devices are submitted in (riskiest first)

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-02 10:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), server_default='30', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('request_devices', schema=None) as batch_op:
        batch_op.drop_column('priority')
