"""Posting a finished piece: embed + MP3 + MIDI + piano roll (+ video), stored, with rating prompts."""

from __future__ import annotations

import hashlib
import io
import logging
import time

import enum

import discord

import db
from db import PieceKind
from cogs.utils.limits import user_tag
from composer.music.grid import Piece
from composer.music.midi_io import stored_piece
from composer.render.api import BEATS_FORMAT, SCORE_FORMATS, VIDEO_FORMAT, piece_formats
from composer.render.presets import DEFAULT_SOUND
from service.jobs import Job, LAYERS_FORMAT, Result, STINGER_PREFIX, file_ending

log = logging.getLogger("mozart.posting")

LIKE, DISLIKE = "👍", "👎"
RATING_VALUES = {LIKE: 1, DISLIKE: -1}
# attached in this order, those that were made (the beat map with the MIDI; a loop's OGG, which
# carries its loop points), then whatever else was asked for (layers, stingers)
POSTED_FORMATS = ("mp3", "ogg", "mid", BEATS_FORMAT, "png", VIDEO_FORMAT, *SCORE_FORMATS)
VIDEO_PARAM = "video"  # in a stored piece's params when it was asked for with a video
SCORE_PARAM = "score"  # ... and with its sheet music


class JobKind(enum.StrEnum):
    """Work for a posted piece that stores no new piece (the job log names it; a stored piece's kind is
    a ``db.PieceKind``)."""

    STEMS = "stems"  # 📦, privately
    LAYERS = "layers"  # 🎚️, privately
    SCORE = "score"  # 🎼
    PLAY = "play"  # ▶️ and /play: rendered for the voice channel


def post_formats(video: bool = False, score: bool = False) -> tuple[str, ...]:
    """What to render for a post: MP3, MIDI and piano roll, and the MP4 and the score when asked for."""
    return piece_formats(video=video, score=score)


def game_formats(loop: bool = False, layers: bool = False, stinger: str | None = None) -> tuple[str, ...]:
    """What a post adds for a game: a loop's OGG (with its loop points), the intensity layers
    and a stinger."""
    return ((("ogg",) if loop else ()) + ((LAYERS_FORMAT,) if layers else ())
            + ((STINGER_PREFIX + stinger,) if stinger else ()))


def formats_of(row: db.PieceRow) -> tuple[str, ...]:
    """A stored piece's post formats: what is made from a video (or score) piece comes with one too."""
    params = row.params or {}
    return post_formats(bool(params.get(VIDEO_PARAM)), bool(params.get(SCORE_PARAM)))


def score_files(result: Result, basename: str) -> list[discord.File]:
    """The score's first page (PNG) and its MusicXML, as attachments."""
    return [discord.File(io.BytesIO(result.files[fmt]), filename=f"{basename}.{file_ending(fmt)}")
            for fmt in SCORE_FORMATS if fmt in result.files]


def sound_of(row: db.PieceRow) -> str:
    """The sound a stored piece was posted with."""
    return (row.params or {}).get("sound", DEFAULT_SOUND)


def job_from_row(row: db.PieceRow, **fields) -> Job:
    """A job made from a stored piece: with its sound and its post formats unless ``fields`` say otherwise."""
    return Job(**{"sound": sound_of(row), "formats": formats_of(row), **fields})


def piece_from_row(row: db.PieceRow) -> Piece:
    """Rebuild a stored piece from its MIDI (lossless for Mozart's own exports) and parameters."""
    return stored_piece(row.midi, style=row.style, seed=row.seed, model_version=row.model_version,
                        params=row.params, source=f"piece {row.id}")


def music_key(piece: Piece) -> str:
    """What copies of one piece of music share (its notes, tempo and metre; not its sound): a rater's
    👍 of every copy of it counts once."""
    shape = f"|{piece.tempo:g}|{piece.time_signature[0]}/{piece.time_signature[1]}|{piece.grid.shape}".encode()
    return hashlib.sha256(piece.grid.tobytes() + shape).hexdigest()


def _basename(piece: Piece, piece_id: int | None) -> str:
    style = (piece.extra.get("style") or "piece").replace("/", "-")
    return f"mozart-{piece_id or 'new'}-{style}"


def build_embed(piece: Piece, result: Result, piece_id: int | None, sound: str, kind: PieceKind,
                basename: str) -> discord.Embed:
    style = piece.extra.get("style", "?")
    embed = discord.Embed(
        title=f"🎵 {style} — {piece.n_bars} bars",
        description=f"Piece **#{piece_id}**" + (f" · {kind}" if kind != PieceKind.COMPOSE else "") if piece_id else kind,
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


# What is kept first when the files are over the channel's upload limit: the MIDI (small, every voice),
# and its beat map, then the audio, the piano roll, a loop's OGG, the score, the video.
UPLOAD_PRIORITY = ("mid", BEATS_FORMAT, "mp3", "png", "ogg", "musicxml", "score", VIDEO_FORMAT)
FORMAT_NAMES = {"mid": "MIDI", BEATS_FORMAT: "beat map", "mp3": "MP3", "ogg": "OGG", "png": "piano roll",
                "score": "score", "musicxml": "MusicXML", VIDEO_FORMAT: "video"}


def build_files(result: Result, basename: str, max_bytes: int | None = None) -> tuple[list[discord.File], list[str]]:
    """(the files to attach, notes for the user). Together they must fit ``max_bytes`` (the channel's
    upload limit): what does not fit is left out, the least needed first, with a note saying so, so
    that the rest (at least the MIDI) is still posted rather than the post failing."""
    extra = [f for f in result.files if f not in POSTED_FORMATS]  # layers, stingers: after the rest
    kept, notes, total = set(), [], 0
    for fmt in (*UPLOAD_PRIORITY, *extra):  # UPLOAD_PRIORITY orders every posted format
        data = result.files.get(fmt)
        if data is None:
            continue
        if max_bytes is not None and total + len(data) > max_bytes:
            notes.append(f"The {FORMAT_NAMES.get(fmt, file_ending(fmt))} ({len(data) / 2**20:.1f} MB) is over this "
                         f"channel's upload limit "
                         f"({max_bytes / 2**20:.0f} MB), so it is not attached; a shorter piece would fit.")
            continue
        kept.add(fmt)
        total += len(data)
    files = [discord.File(io.BytesIO(result.files[fmt]), filename=f"{basename}.{file_ending(fmt)}")
             for fmt in (*POSTED_FORMATS, *extra) if fmt in kept]
    return files, notes


def lineage(row: db.PieceRow) -> dict:
    """What a piece made from ``row`` carries on: the strength of the remix of an upload it descends
    from (a remix at 0.05 is a near-copy of someone's file, and so is everything built on it)."""
    params = row.params or {}
    if row.kind == PieceKind.REMIX:
        return {db.UPLOAD_STRENGTH: params.get("strength")}
    return {db.UPLOAD_STRENGTH: params[db.UPLOAD_STRENGTH]} if db.UPLOAD_STRENGTH in params else {}


async def deliver(bot, interaction: discord.Interaction, result: Result, *, kind: PieceKind,
                  parent_id: int | None = None, remix_source_id: int | None = None, extra_params: dict | None = None):
    """Store the piece, post it as the answer to ``interaction`` and prompt for ratings.

    The seconds the upload took are added to ``result.seconds['upload']``."""
    from cogs.utils.views import PieceView

    piece = result.piece
    sound = result.sound  # what was actually used (chip if the SoundFont failed)
    params = {**piece.extra.get("params", {}), **(extra_params or {}), "sound": sound, "key_found": piece.key,
              "sections": piece.sections}
    if kind != PieceKind.REMIX:  # an uploaded file's name stays with the remix of it, never with a copy or what is built on it
        params = {k: v for k, v in params.items() if k not in db.PERSONAL_PARAMS}
    row_id = None
    try:
        row = await db.create_piece(
            bot.db, user_id=interaction.user.id, kind=kind, style=piece.extra.get("style", "?"), params=params,
            seed=int(piece.extra.get("seed", 0)), model_version=piece.extra.get("model_version", "?"),
            midi=result.files.get("mid") or b"", guild_id=interaction.guild_id, channel_id=interaction.channel_id,
            parent_id=parent_id, originality_bars=result.originality_bars, duration_s=piece.seconds,
            remix_source_id=remix_source_id, music_key=music_key(piece),
        )
        row_id = row.id
    except db.DatabaseError:
        log.exception("could not store a %s piece for user %s", kind, user_tag(interaction.user.id, bot.config.log_salt))
    basename = _basename(piece, row_id)
    embed = build_embed(piece, result, row_id, sound, kind, basename)
    files, notes = build_files(result, basename, getattr(interaction, "filesize_limit", None))
    notes = list(result.warnings) + notes
    if not row_id:
        notes.append("I could not save this piece, so its buttons and ratings won't work.")
    content = "\n".join(f"⚠️ {note}" for note in notes) or None
    started = time.perf_counter()
    try:
        message = await interaction.edit_original_response(content=content, embed=embed,
                                                           attachments=files,
                                                           view=PieceView() if row_id else None)
    finally:
        result.seconds["upload"] = time.perf_counter() - started
    if row_id:
        try:
            await db.attach_message(bot.db, row_id, message.channel.id, message.id)
        except db.DatabaseError:
            log.exception("could not link piece %s to its message", row_id)
        for emoji in (LIKE, DISLIKE):
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException:
                break
    return row_id
