"""jobs created at: an approval answers at once; a worker creates the jobs after, exactly once

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02 13:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jobs_created_at', sa.DateTime(timezone=True), nullable=True))
    # requests approved before this revision got their jobs in the approving transaction
    op.execute("UPDATE requests SET jobs_created_at = approved_at WHERE approved_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('jobs_created_at')
