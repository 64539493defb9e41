"""webhook nonces: incident-webhook signatures already accepted (replay refused on every replica)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_nonces',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_webhook_nonces')),
    )
    with op.batch_alter_table('webhook_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_nonces_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_nonces_seen_at'))
    op.drop_table('webhook_nonces')
