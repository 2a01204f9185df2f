"""initial schema: pieces, ratings, remix sources

Why: the bot stores every generated piece (with its MIDI, seed and knobs so it
can be replayed), who rated it 👍/👎 from reactions on its message, and the MIDI
files users upload to /remix.

Revision ID: 0b36aab347c6
Revises:
Create Date: 2026-11-25 20:22:19.362842

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0b36aab347c6'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('pieces',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=True),
    sa.Column('channel_id', sa.BigInteger(), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('style', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('midi', sa.LargeBinary(), nullable=False),
    sa.Column('originality_bars', sa.Float(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.CheckConstraint("kind IN ('compose', 'remix', 'reroll', 'variation', 'extend', 'resound')", name=op.f('ck_pieces_kind')),
    sa.ForeignKeyConstraint(['parent_id'], ['pieces.id'], name=op.f('fk_pieces_parent_id_pieces'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pieces')),
    sa.UniqueConstraint('message_id', name=op.f('uq_pieces_message_id'))
    )
    with op.batch_alter_table('pieces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pieces_model_version'), ['model_version'], unique=False)
        batch_op.create_index(batch_op.f('ix_pieces_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pieces_user_id'), ['user_id'], unique=False)

    op.create_table('ratings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('piece_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('value IN (1, -1)', name=op.f('ck_ratings_value')),
    sa.ForeignKeyConstraint(['piece_id'], ['pieces.id'], name=op.f('fk_ratings_piece_id_pieces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ratings')),
    sa.UniqueConstraint('piece_id', 'user_id', name=op.f('uq_ratings_piece_id'))
    )
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ratings_user_id'), ['user_id'], unique=False)

    op.create_table('remix_sources',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('piece_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('midi', sa.LargeBinary(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['piece_id'], ['pieces.id'], name=op.f('fk_remix_sources_piece_id_pieces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_remix_sources'))
    )
    with op.batch_alter_table('remix_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remix_sources_piece_id'), ['piece_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_remix_sources_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_remix_sources_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('remix_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remix_sources_user_id'))
        batch_op.drop_index(batch_op.f('ix_remix_sources_sha256'))
        batch_op.drop_index(batch_op.f('ix_remix_sources_piece_id'))

    op.drop_table('remix_sources')
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ratings_user_id'))

    op.drop_table('ratings')
    with op.batch_alter_table('pieces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pieces_user_id'))
        batch_op.drop_index(batch_op.f('ix_pieces_parent_id'))
        batch_op.drop_index(batch_op.f('ix_pieces_model_version'))

    op.drop_table('pieces')
