"""forget users: anonymous pieces; model versions

Why: a person who asks to be forgotten loses their ratings and uploads, but the
pieces they asked for stay, anonymous (``pieces.user_id`` becomes nullable), so
other people's ratings of those pieces are kept. ``model_versions`` records the
checkpoints the bot serves (or served), so it can choose among several.

SQLite cannot drop a NOT NULL, so batch mode copies ``pieces`` and drops the old
table. With ``PRAGMA foreign_keys=ON`` (the bot's engine, inside a transaction
where it cannot be switched off) that DROP deletes every row first and runs the
foreign-key actions: ratings and remix sources would be cascaded away and
``parent_id`` set to NULL. So on SQLite they are kept aside and put back.

Revision ID: 3c02804e1c39
Revises: 0b36aab347c6
Create Date: 2026-11-30 08:52:14.091073

"""
from typing import Callable, Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3c02804e1c39'
down_revision: Union[str, Sequence[str], None] = '0b36aab347c6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# tables whose rows reference pieces (ON DELETE CASCADE)
_CHILDREN = ('ratings', 'remix_sources')


def _pieces(user_id_nullable: bool) -> sa.Table:
    """``pieces`` as it is before the change: batch mode copies it without reflecting (so ``--sql`` works)."""
    return sa.Table(
        'pieces', sa.MetaData(),
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_id', sa.BigInteger(), nullable=user_id_nullable),
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
        sa.CheckConstraint("kind IN ('compose', 'remix', 'reroll', 'variation', 'extend', 'resound')",
                           name='ck_pieces_kind'),
        sa.ForeignKeyConstraint(['parent_id'], ['pieces.id'], name='fk_pieces_parent_id_pieces', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_pieces'),
        sa.UniqueConstraint('message_id', name='uq_pieces_message_id'),
        sa.Index('ix_pieces_model_version', 'model_version'),
        sa.Index('ix_pieces_parent_id', 'parent_id'),
        sa.Index('ix_pieces_user_id', 'user_id'),
    )


def _rebuild_pieces(before: sa.Table, alter: Callable[[object], None]) -> None:
    """Run ``alter(batch_op)`` on ``pieces`` (shaped as ``before``) without losing rows that reference it."""
    sqlite = op.get_context().dialect.name == 'sqlite'
    if sqlite:
        for table in _CHILDREN:
            op.execute(f'CREATE TEMP TABLE _keep_{table} AS SELECT * FROM {table}')
        op.execute('CREATE TEMP TABLE _keep_parents AS SELECT id, parent_id FROM pieces WHERE parent_id IS NOT NULL')
    with op.batch_alter_table('pieces', schema=None, copy_from=before) as batch_op:
        alter(batch_op)
    if sqlite:
        op.execute(
            'UPDATE pieces SET parent_id = (SELECT k.parent_id FROM _keep_parents AS k WHERE k.id = pieces.id)'
            ' WHERE id IN (SELECT id FROM _keep_parents)'
        )
        op.execute('DROP TABLE _keep_parents')
        for table in _CHILDREN:
            op.execute(f'DELETE FROM {table}')  # still there when foreign keys were off
            op.execute(f'INSERT INTO {table} SELECT * FROM _keep_{table}')
            op.execute(f'DROP TABLE _keep_{table}')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('model_versions',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('parent', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('serving', 'retired')", name=op.f('ck_model_versions_state')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_model_versions'))
    )
    _rebuild_pieces(_pieces(user_id_nullable=False),
                    lambda batch_op: batch_op.alter_column('user_id', existing_type=sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade schema.

    Anonymous pieces get ``user_id`` 0 (no Discord id is 0): the old schema needs one.
    """
    op.execute('UPDATE pieces SET user_id = 0 WHERE user_id IS NULL')
    _rebuild_pieces(_pieces(user_id_nullable=True),
                    lambda batch_op: batch_op.alter_column('user_id', existing_type=sa.BigInteger(), nullable=False))
    op.drop_table('model_versions')
