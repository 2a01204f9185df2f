"""job files: what composing workers made, until the bot posts it

Why: with workers on a queue (``MOZART_QUEUE_URL``) the files of a piece travel through
the database every process already shares, not through the queue.

Revision ID: 5e1f0a7c2b9d
Revises: 3c02804e1c39
Create Date: 2026-11-30 11:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '5e1f0a7c2b9d'
down_revision: Union[str, Sequence[str], None] = '3c02804e1c39'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('job_files',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('job_id', 'format', name=op.f('pk_job_files'))
    )
    op.create_index(op.f('ix_job_files_created_at'), 'job_files', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_files_created_at'), table_name='job_files')
    op.drop_table('job_files')
