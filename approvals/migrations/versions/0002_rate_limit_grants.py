"""rate limit grants: one MDE budget shared by every replica (mde/limiter_backends/postgres.py)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # times are Unix seconds (wall clock), compared across processes and hosts; answered_at is NULL in flight
    op.create_table('rate_limit_grants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('family', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('granted_at', sa.Double(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=False),
    sa.Column('answered_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_grants'))
    )
    with op.batch_alter_table('rate_limit_grants', schema=None) as batch_op:
        batch_op.create_index('ix_rate_limit_grants_family_answered', ['family', 'answered_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_limit_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_limit_grants_family_answered')

    op.drop_table('rate_limit_grants')
