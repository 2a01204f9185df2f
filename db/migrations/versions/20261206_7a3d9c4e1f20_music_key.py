"""music key: copies of one piece of music share it, so a rater's 👍 on copies counts once

Why: every reroll-free copy of a piece (/piece, a change of sound) is a new row that could be rated
again; the bandit and the fine-tune count each rater once per music. Pieces stored before this have
no key and count as their own music.

Revision ID: 7a3d9c4e1f20
Revises: 5e1f0a7c2b9d
Create Date: 2026-12-06 00:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '7a3d9c4e1f20'
down_revision: Union[str, Sequence[str], None] = '5e1f0a7c2b9d'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('pieces', sa.Column('music_key', sa.String(length=64), nullable=True,
                                      server_default=sa.text('NULL')))
    op.create_index(op.f('ix_pieces_music_key'), 'pieces', ['music_key'], unique=False)
    op.create_index(op.f('ix_remix_sources_created_at'), 'remix_sources', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_remix_sources_created_at'), table_name='remix_sources')
    op.drop_index(op.f('ix_pieces_music_key'), table_name='pieces')
    # not batch mode: a copy of ``pieces`` would cascade its ratings away on SQLite (see 3c02804e1c39);
    # SQLite drops a column in place since 3.35
    op.execute('ALTER TABLE pieces DROP COLUMN music_key')
