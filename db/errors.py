"""Exceptions the database layer raises instead of driver errors.

Everything here derives from :class:`DatabaseError` and carries a message that
is safe to show to a Discord user (no SQL, no paths), so the bot's error
handler can send ``str(exc)`` as is and log ``exc.__cause__`` for us.
"""

from __future__ import annotations

__all__ = (
    'DatabaseError',
    'DatabaseBusyError',
    'DatabaseUnavailableError',
    'PieceNotFoundError',
)


class DatabaseError(Exception):
    """Base class: a database operation failed; ``str(exc)`` is user-safe."""

    default_message = 'The database failed. Please try again later.'

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class DatabaseBusyError(DatabaseError):
    """The database stayed locked by another writer after every retry.

    Nothing was written: the transaction was rolled back.
    """

    default_message = 'The database is busy right now. Please try again in a few seconds.'


class DatabaseUnavailableError(DatabaseError):
    """The database could not be reached or opened after every retry."""

    default_message = 'The database is unavailable right now. Please try again later.'


class PieceNotFoundError(DatabaseError):
    """No piece with that id (or not one the caller owns)."""

    def __init__(self, piece_id: int) -> None:
        super().__init__(f'No piece with ID {piece_id} — is it yours?')
        self.piece_id = piece_id
