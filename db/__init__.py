"""Mozart's database: models, engine, migrations and queries (SQLAlchemy 2, async).

Start-up::

    engine = db.make_engine(url)        # sqlite+aiosqlite:///mozart.db by default
    await db.upgrade(engine)            # migrations to head; a no-op when current
    sessions = db.make_session_factory(engine)
    piece = await db.create_piece(sessions, user_id=..., kind='compose', ...)

All failures a user may see derive from :class:`db.DatabaseError`.
"""

from .engine import DEFAULT_URL, make_engine, make_session_factory
from .errors import DatabaseBusyError, DatabaseError, DatabaseUnavailableError, PieceNotFoundError
from .migrate import upgrade, upgrade_sql
from .models import PIECE_KINDS, Base, PieceRow, Rating, RemixSource
from .queries import (
    DeletedUserData,
    ModelVersionStats,
    RatedPiece,
    SessionFactory,
    add_remix_source,
    attach_message,
    create_piece,
    delete_piece,
    delete_rating,
    delete_user_data,
    get_piece,
    like_ratio_by_model_version,
    piece_by_message,
    rated_pieces,
    rating_counts,
    remix_source_of,
    upsert_rating,
)

__all__ = (
    'DEFAULT_URL', 'make_engine', 'make_session_factory',
    'DatabaseError', 'DatabaseBusyError', 'DatabaseUnavailableError', 'PieceNotFoundError',
    'upgrade', 'upgrade_sql',
    'PIECE_KINDS', 'Base', 'PieceRow', 'Rating', 'RemixSource',
    'SessionFactory', 'RatedPiece', 'ModelVersionStats', 'DeletedUserData',
    'create_piece', 'get_piece', 'attach_message', 'piece_by_message', 'delete_piece',
    'upsert_rating', 'delete_rating', 'rating_counts', 'like_ratio_by_model_version', 'rated_pieces',
    'add_remix_source', 'remix_source_of', 'delete_user_data',
)
