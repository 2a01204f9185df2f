"""SQLAlchemy 2 declarative models: pieces, their ratings, uploaded remix sources and model versions.

Discord snowflakes exceed 2**31, hence ``BigInteger`` for every Discord id.
The schema itself is created by the Alembic migrations in ``db/migrations``;
``Base.metadata`` is what autogenerate compares against.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .kinds import PIECE_KINDS

__all__ = ('Base', 'PieceRow', 'Rating', 'RemixSource', 'ModelVersion', 'PERSONAL_PARAMS', 'UPLOAD_STRENGTH', 'VERSION_STATES', 'utcnow')

# ``params`` keys holding what a person gave (an uploaded file's name), not needed to
# replay a piece: cleared when that person is forgotten, never exported.
PERSONAL_PARAMS = ('source_file',)
# ``params`` key of a remix of an uploaded file and of every piece built on one: the share of the
# upload's music it re-composed (its ``strength``). Low values are near-copies of someone's file.
UPLOAD_STRENGTH = 'upload_strength'
# Whether the bot may pick a model version for new pieces; checked by a CHECK constraint.
VERSION_STATES = ('serving', 'retired')

# Deterministic constraint names, so later migrations (batch mode on SQLite) can
# drop or alter them by name.
NAMING_CONVENTION = {
    'ix': 'ix_%(column_0_label)s',
    'uq': 'uq_%(table_name)s_%(column_0_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones and hands back naive datetimes; PostgreSQL
    ``timestamptz`` returns aware ones. Storing UTC and re-attaching ``tzinfo``
    on load makes both return the same, comparable value.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f'naive datetime {value!r}: pass an aware UTC datetime')
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PieceRow(Base):
    """One generated piece of music, and the Discord message it was posted in."""

    __tablename__ = 'pieces'
    __mapper_args__ = {'eager_defaults': False}  # an INSERT names only the columns it sets (see music_key)
    __table_args__ = (
        CheckConstraint(
            f"kind IN ({', '.join(repr(kind) for kind in PIECE_KINDS)})", name='kind'  # db/kinds.py
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # who asked for it; NULL once that person asked to be forgotten (the piece stays, anonymous)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)  # None in DMs
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # the bot's post
    kind: Mapped[str] = mapped_column(String(16))  # a PieceKind's value (checked by a CHECK constraint)
    # the piece this one varies / remixes / extends; kept (NULL) if the parent is deleted
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey('pieces.id', ondelete='SET NULL'), index=True
    )
    style: Mapped[str] = mapped_column(String(64))
    # generation knobs: bars, tempo, key, time_signature, form, sound, temperature, top_p, ...
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seed: Mapped[int] = mapped_column(BigInteger)
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    midi: Mapped[bytes] = mapped_column(LargeBinary)
    # longest span (in bars) copied verbatim from the training corpus
    originality_bars: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    # the music itself (grid, tempo, metre): copies of a piece (/piece, a change of sound) share it, so
    # a rater counts once per music; NULL for pieces stored before it existed (each its own music)
    # (a server default, so a piece written without one names no such column: older schemas take it too)
    music_key: Mapped[str | None] = mapped_column(String(64), index=True, server_default=text('NULL'))

    parent: Mapped[PieceRow | None] = relationship(remote_side=[id], lazy='raise')

    def __repr__(self) -> str:
        return f'<PieceRow id={self.id} kind={self.kind!r} style={self.style!r} user_id={self.user_id}>'


class Rating(Base):
    """A user's 👍 (+1) or 👎 (-1) on a piece; at most one per user and piece."""

    __tablename__ = 'ratings'
    __table_args__ = (
        UniqueConstraint('piece_id', 'user_id'),
        CheckConstraint('value IN (1, -1)', name='value'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    piece_id: Mapped[int] = mapped_column(ForeignKey('pieces.id', ondelete='CASCADE'))
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    value: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f'<Rating piece_id={self.piece_id} user_id={self.user_id} value={self.value}>'


class RemixSource(Base):
    """A MIDI file a user uploaded to /remix, kept so a remix can be replayed."""

    __tablename__ = 'remix_sources'

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # the remix made from it; NULL until the piece exists
    piece_id: Mapped[int | None] = mapped_column(
        ForeignKey('pieces.id', ondelete='CASCADE'), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # hex digest of midi
    size_bytes: Mapped[int] = mapped_column(Integer)
    midi: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)  # expires after

    def __repr__(self) -> str:
        return f'<RemixSource id={self.id} filename={self.filename!r} user_id={self.user_id}>'


class ModelVersion(Base):
    """A checkpoint the bot composes with (``serving``) or used to (``retired``).

    ``name`` is what pieces record in ``PieceRow.model_version``.
    """

    __tablename__ = 'model_versions'
    __table_args__ = (CheckConstraint(f"state IN ({', '.join(map(repr, VERSION_STATES))})", name='state'),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))  # checkpoint folder as the owner gave it (may be relative)
    parent: Mapped[str | None] = mapped_column(String(64))  # the version it was fine-tuned from
    state: Mapped[str] = mapped_column(String(16), default='serving')  # one of VERSION_STATES
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f'<ModelVersion {self.name!r} state={self.state!r} path={self.path!r}>'


class JobFile(Base):
    """A file a composing worker made (MP3, MIDI, picture...), kept until the bot that asked posts it.

    Queued jobs hand their files over here rather than through the queue: a queue carries small
    messages, the database is already shared by every bot process and worker.
    """

    __tablename__ = 'job_files'

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(16), primary_key=True)  # mp3, mid, png, mp4...
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f'<JobFile {self.job_id} {self.format} {len(self.data)} bytes>'
