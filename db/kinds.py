"""What produced a stored piece: the one list of piece kinds (the ``pieces.kind`` column's values).

The database, the bot's cogs and replay (``cogs/utils/replay.py``) all spell a kind through
``PieceKind``; its values are what the column holds, so they never change (a new kind needs a
migration of the column's CHECK constraint).
"""

from __future__ import annotations

import enum


class PieceKind(enum.StrEnum):
    COMPOSE = "compose"  # /compose
    REMIX = "remix"  # /remix of an uploaded file
    REROLL = "reroll"  # 🔁: the parent's request with another seed
    VARIATION = "variation"  # 🎲: starts from the parent's music
    EXTEND = "extend"  # ⏩: the parent's music and 8 bars more
    RESOUND = "resound"  # 🎹: the parent's music in another sound

    @property
    def starts_from_parent(self) -> bool:
        """Composed with the parent piece's music as its primer."""
        return self in (PieceKind.VARIATION, PieceKind.EXTEND)

    @property
    def same_music_as_parent(self) -> bool:
        """A change of sound re-renders its parent; a reroll re-composes its parent's request (and primer)."""
        return self in (PieceKind.RESOUND, PieceKind.REROLL)


PIECE_KINDS = tuple(kind.value for kind in PieceKind)
