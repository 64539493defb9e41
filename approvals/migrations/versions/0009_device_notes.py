"""device notes: why a device is in a request's set beyond its target (user: targets' last logon)

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-02 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_devices", schema=None) as batch_op:
        batch_op.drop_column("note")
