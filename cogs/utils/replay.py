"""The request that made a stored piece, primer included: generating it again gives the same MIDI.

Used by the buttons that build on a piece (a reroll is its request with another seed) and by
anyone who wants to replay a row: every random choice comes from the stored seed.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import db
from cogs.utils.errors import UserError
from cogs.utils.posting import piece_from_row
from composer.music.midi_io import import_midi
from composer.music.grid import Piece
from composer.generate.request import GenerationRequest, remix_primer

Parse = Callable[..., Awaitable[Piece]]  # import_midi's arguments -> the piece (Studio.parse_midi)


async def _parse_here(data: bytes, **options) -> Piece:
    return await asyncio.to_thread(import_midi, data, **options)


async def request_of(sessions: db.SessionFactory, row: db.PieceRow, *, parse: Parse = _parse_here,
                     user_id: int | None = None) -> GenerationRequest:
    """``row``'s request with its primer: the parent piece (variation, extend), the uploaded
    file (remix), or its parent's primer (reroll, change of sound).

    An uploaded file is read by ``parse`` (the bot's: in a child process, never on the event loop). With
    ``user_id``, only that person's own upload may be used: a copy of someone else's remix (``/piece``)
    can be re-rendered but never composed again from their file."""
    primer = None
    kind = db.PieceKind(row.kind)
    if kind is db.PieceKind.REMIX:
        source = await db.remix_source_of(sessions, row.id)
        if source is None:
            raise UserError("The file this remix started from is no longer stored (uploads are kept for a "
                            "limited time, or its owner removed it).")
        if user_id is not None and source.user_id != user_id:
            raise UserError("This piece was remixed from someone else's file, so only they can compose from it "
                            "again. Try 🎲 variation or ⏩ extend, which build on the music itself.")
        bars = (row.params or {}).get("bars")
        primer = remix_primer(await parse(source.midi, crop_bars=bars, title=source.filename))
    elif kind.starts_from_parent or kind.same_music_as_parent:
        parent = await db.get_piece(sessions, row.parent_id) if row.parent_id else None
        if parent is None:
            raise UserError("The piece this one was made from is no longer stored.")
        if kind.starts_from_parent:
            primer = piece_from_row(parent)
        else:
            primer = (await request_of(sessions, parent, parse=parse, user_id=user_id)).primer
    return GenerationRequest.from_params(row.params or {}, primer=primer)
