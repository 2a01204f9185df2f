"""Posting a finished piece: embed + MP3 + MIDI + piano roll, stored, with rating prompts."""

from __future__ import annotations

import io
import logging
import time

import discord

import db
from cogs.utils.limits import user_tag
from composer.grid import Piece
from composer.midi_io import stored_piece
from composer.studio import Result

log = logging.getLogger("mozart.posting")

LIKE, DISLIKE = "👍", "👎"
RATING_VALUES = {LIKE: 1, DISLIKE: -1}


def piece_from_row(row: db.PieceRow) -> Piece:
    """Rebuild a stored piece from its MIDI (lossless for Mozart's own exports) and parameters."""
    return stored_piece(row.midi, style=row.style, seed=row.seed, model_version=row.model_version,
                        params=row.params, source=f"piece {row.id}")


def _basename(piece: Piece, piece_id: int | None) -> str:
    style = (piece.extra.get("style") or "piece").replace("/", "-")
    return f"mozart-{piece_id or 'new'}-{style}"


def build_embed(piece: Piece, result: Result, piece_id: int | None, sound: str, kind: str,
                basename: str) -> discord.Embed:
    style = piece.extra.get("style", "?")
    embed = discord.Embed(
        title=f"🎵 {style} — {piece.n_bars} bars",
        description=f"Piece **#{piece_id}**" + (f" · {kind}" if kind != "compose" else "") if piece_id else kind,
        colour=discord.Colour.blurple(),
    )
    params = piece.extra.get("params", {})
    embed.add_field(name="Tempo", value=f"{piece.tempo:g} bpm")
    embed.add_field(name="Key", value=piece.key or "—")
    embed.add_field(name="Time", value=f"{piece.time_signature[0]}/{piece.time_signature[1]}")
    embed.add_field(name="Form", value=params.get("form", "through"))
    embed.add_field(name="Sound", value=sound)
    embed.add_field(name="Seed", value=str(piece.extra.get("seed", "—")))
    if result.originality_bars is not None:
        verdict = "original" if result.originality_bars < 2 else "borrows from its training music"
        embed.add_field(name="Originality", value=f"longest span shared with training music: "
                                                  f"{result.originality_bars:g} bars ({verdict})", inline=False)
    embed.set_image(url=f"attachment://{basename}.png")
    embed.set_footer(text=f"model {piece.extra.get('model_version', '?')} · react {LIKE}/{DISLIKE} to rate: "
                          f"ratings teach the next model")
    return embed


def build_files(result: Result, basename: str) -> list[discord.File]:
    return [discord.File(io.BytesIO(result.files[fmt]), filename=f"{basename}.{fmt}")
            for fmt in ("mp3", "mid", "png") if fmt in result.files]


async def deliver(bot, interaction: discord.Interaction, result: Result, *, kind: str,
                  parent_id: int | None = None, remix_source_id: int | None = None, extra_params: dict | None = None):
    """Store the piece, post it as the answer to ``interaction`` and prompt for ratings.

    The seconds the upload took are added to ``result.seconds['upload']``."""
    from cogs.utils.views import PieceView

    piece = result.piece
    sound = result.sound  # what was actually used (chip if the SoundFont failed)
    params = {**piece.extra.get("params", {}), **(extra_params or {}), "sound": sound, "key_found": piece.key,
              "sections": piece.sections}
    row_id = None
    try:
        row = await db.create_piece(
            bot.db, user_id=interaction.user.id, kind=kind, style=piece.extra.get("style", "?"), params=params,
            seed=int(piece.extra.get("seed", 0)), model_version=piece.extra.get("model_version", "?"),
            midi=result.files.get("mid") or b"", guild_id=interaction.guild_id, channel_id=interaction.channel_id,
            parent_id=parent_id, originality_bars=result.originality_bars, duration_s=piece.seconds,
            remix_source_id=remix_source_id,
        )
        row_id = row.id
    except db.DatabaseError:
        log.exception("could not store a %s piece for user %s", kind, user_tag(interaction.user.id, bot.config.log_salt))
    basename = _basename(piece, row_id)
    embed = build_embed(piece, result, row_id, sound, kind, basename)
    notes = list(result.warnings)
    if not row_id:
        notes.append("I could not save this piece, so its buttons and ratings won't work.")
    content = "\n".join(f"⚠️ {note}" for note in notes) or None
    started = time.perf_counter()
    try:
        message = await interaction.edit_original_response(content=content, embed=embed,
                                                           attachments=build_files(result, basename),
                                                           view=PieceView() if row_id else None)
    finally:
        result.seconds["upload"] = time.perf_counter() - started
    if row_id:
        try:
            await db.attach_message(bot.db, row_id, message.channel.id, message.id)
        except db.DatabaseError:
            log.exception("could not link piece %s to message %s", row_id, message.id)
        for emoji in (LIKE, DISLIKE):
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException:
                break
    return row_id
