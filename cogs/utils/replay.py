"""The request that made a stored piece, primer included: generating it again gives the same MIDI.

Used by the buttons that build on a piece (a reroll is its request with another seed) and by
anyone who wants to replay a row: every random choice comes from the stored seed.
"""

from __future__ import annotations

import db
from cogs.utils.errors import UserError
from cogs.utils.posting import piece_from_row
from composer.midi_io import import_midi
from composer.request import GenerationRequest, remix_primer

# A change of sound re-renders its parent; a reroll re-composes its parent's request.
SAME_MUSIC_AS_PARENT = ("resound", "reroll")
STARTS_FROM_PARENT = ("variation", "extend")


async def request_of(sessions: db.SessionFactory, row: db.PieceRow) -> GenerationRequest:
    """``row``'s request with its primer: the parent piece (variation, extend), the uploaded
    file (remix), or its parent's primer (reroll, change of sound)."""
    primer = None
    if row.kind == "remix":
        source = await db.remix_source_of(sessions, row.id)
        if source is None:
            raise UserError("The file this remix started from is no longer stored.")
        bars = (row.params or {}).get("bars")
        primer = remix_primer(import_midi(source.midi, crop_bars=bars, title=source.filename))
    elif row.kind in STARTS_FROM_PARENT + SAME_MUSIC_AS_PARENT:
        parent = await db.get_piece(sessions, row.parent_id) if row.parent_id else None
        if parent is None:
            raise UserError("The piece this one was made from is no longer stored.")
        if row.kind in STARTS_FROM_PARENT:
            primer = piece_from_row(parent)
        else:
            primer = (await request_of(sessions, parent)).primer
    return GenerationRequest.from_params(row.params or {}, primer=primer)
