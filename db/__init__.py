"""Mozart's database: models, engine, migrations and queries (SQLAlchemy 2, async).

Start-up::

    engine = db.make_engine(url)        # sqlite+aiosqlite:///mozart.db by default
    await db.upgrade(engine)            # migrations to head; a no-op when current
    sessions = db.make_session_factory(engine)
    piece = await db.create_piece(sessions, user_id=..., kind=db.PieceKind.COMPOSE, ...)

All failures a user may see derive from :class:`db.DatabaseError`.
"""

from .engine import DEFAULT_URL, make_engine, make_session_factory
from .errors import DatabaseBusyError, DatabaseError, DatabaseUnavailableError, PieceNotFoundError
from .migrate import upgrade, upgrade_sql
from .job_files import put_job_files, sweep_job_files, take_job_files
from .kinds import PIECE_KINDS, PieceKind
from .models import (PERSONAL_PARAMS, UPLOAD_STRENGTH, VERSION_STATES, Base, JobFile, ModelVersion, PieceRow, Rating,
                     RemixSource)
from .queries import (
    ForgottenData,
    ModelVersionStats,
    PublicStats,
    RatedPiece,
    SessionFactory,
    add_remix_source,
    attach_message,
    create_piece,
    delete_piece,
    delete_rating,
    expire_uploads,
    forget_user,
    posts_of_user,
    get_piece,
    piece_in_reach,
    latest_piece,
    like_ratio_by_model_version,
    piece_by_message,
    public_stats,
    rated_pieces,
    rating_counts,
    ratings_for_export,
    remix_source_of,
    retire_version,
    retired_versions,
    serve_version,
    serving_versions,
    upsert_rating,
    user_data_counts,
)

__all__ = (
    'DEFAULT_URL', 'make_engine', 'make_session_factory',
    'DatabaseError', 'DatabaseBusyError', 'DatabaseUnavailableError', 'PieceNotFoundError',
    'upgrade', 'upgrade_sql',
    'PIECE_KINDS', 'PieceKind', 'PERSONAL_PARAMS', 'UPLOAD_STRENGTH', 'VERSION_STATES', 'Base', 'PieceRow', 'Rating', 'RemixSource', 'ModelVersion',
    'SessionFactory', 'RatedPiece', 'ModelVersionStats', 'ForgottenData', 'PublicStats',
    'create_piece', 'get_piece', 'piece_in_reach', 'latest_piece', 'attach_message', 'piece_by_message', 'delete_piece',
    'upsert_rating', 'delete_rating', 'rating_counts', 'like_ratio_by_model_version', 'rated_pieces',
    'ratings_for_export', 'public_stats',
    'add_remix_source', 'remix_source_of', 'expire_uploads', 'forget_user', 'posts_of_user', 'user_data_counts',
    'serve_version', 'retire_version', 'serving_versions', 'retired_versions',
    'JobFile', 'put_job_files', 'take_job_files', 'sweep_job_files',
)
