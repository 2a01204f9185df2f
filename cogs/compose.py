"""/compose and the buttons under a piece: reroll, variation, extend, change sound."""

from __future__ import annotations

import dataclasses
import io
import logging
import secrets
import time

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import UserError
from cogs.utils.limits import log_job, user_tag
from cogs.utils.options import (BARS, DEFAULT_SOUND, LAYERS_HELP, SCORE_HELP, SEED, SOUND_CHOICES, SOUND_HELP,
                                STINGER_CHOICES, STINGER_HELP, TEMPERATURE, TEMPO, VIDEO_HELP, choices, default,
                                describe)
from cogs.utils.posting import (SCORE_PARAM, VIDEO_PARAM, deliver, game_formats, job_from_row, piece_from_row,
                                post_formats, score_files)
from cogs.utils.replay import request_of
from cogs.utils.views import SoundPicker
from composer.layers import LAYERS
from composer.render.api import SCORE_FORMATS, VIDEO_FORMAT
from composer.request import MAX_BARS, MAX_SEED, GenerationRequest, extend_request, variation_request
from composer.studio import LAYERS_FORMAT, Job, file_ending

log = logging.getLogger("mozart.compose")

PROGRESS_EDIT_INTERVAL_S = 1.5


class Compose(commands.Cog):
    """Compose new pieces and build on posted ones."""

    def __init__(self, bot):
        self.bot = bot

    @property
    def catalog(self):
        return self.bot.studio.generator.catalog

    # -- shared by every command that makes a piece ---------------------------------------
    async def make(self, interaction: discord.Interaction, job: Job, *, kind: str, parent_id: int | None = None,
                   extra_params: dict | None = None, remix_upload: tuple[str, bytes] | None = None) -> int | None:
        """Check the request, take the person's turn (``bot.limiter``: wait in line, or refused when far over),
        defer, queue the job with progress edits, then post the result; one job-log line however it ends.

        ``remix_upload`` (file name, bytes) is kept with the remix once it is made: a request that is
        refused or fails stores nothing of the person's file."""
        if job.request is not None:  # a bad request is answered at once, privately, before deferring
            job = dataclasses.replace(job, request=self.bot.studio.generator.prepare(job.request).request)
            if job.version is None and self.bot.versions is not None:  # versions compete for 👍 (Thompson)
                job = dataclasses.replace(job, version=await self.bot.versions.assign())
        if VIDEO_FORMAT in job.formats:  # kept with the piece, so what is made from it comes with a video too
            extra_params = {**(extra_params or {}), VIDEO_PARAM: True}
        if SCORE_FORMATS[0] in job.formats:  # ... and with its score
            extra_params = {**(extra_params or {}), SCORE_PARAM: True}
        seconds: dict[str, float] = {}  # limited, queued, generate, render, upload: for the job log
        result, outcome = None, "ok"
        try:
            # Over the person's limits: waits in their line (told its place); far over: refused now.
            with self.bot.limiter.enter(interaction.user.id) as turn:
                if not interaction.response.is_done():
                    await interaction.response.defer(thinking=True)
                last_edit = [0.0]

                async def update(text: str) -> None:
                    now = time.monotonic()
                    if now - last_edit[0] >= PROGRESS_EDIT_INTERVAL_S or text.startswith("Queued"):
                        last_edit[0] = now
                        await interaction.edit_original_response(content=f"⏳ {text}")

                seconds["limited"] = await turn.wait(update)
                result = await self.bot.studio.submit(job, update, seconds=seconds)
                remix_source_id = await self._keep_upload(interaction, remix_upload) if remix_upload else None
                return await deliver(self.bot, interaction, result, kind=kind, parent_id=parent_id,
                                     extra_params=extra_params, remix_source_id=remix_source_id)
        except BaseException as e:
            outcome = type(e).__name__
            raise
        finally:
            piece = result.piece if result is not None else job.piece
            log_job(user_id=interaction.user.id, salt=self.bot.config.log_salt, kind=kind,
                    style=job.request.style if job.request is not None else piece.extra.get("style"),
                    bars=piece.n_bars if piece is not None else job.request.bars, seconds=seconds, outcome=outcome)

    async def _keep_upload(self, interaction: discord.Interaction, upload: tuple[str, bytes]) -> int | None:
        """Store a remix's source file; the remix is still posted if the database fails."""
        filename, data = upload
        try:
            return (await db.add_remix_source(self.bot.db, user_id=interaction.user.id, filename=filename, midi=data)).id
        except db.DatabaseError:
            log.exception("could not store a remix source for user %s",
                          user_tag(interaction.user.id, self.bot.config.log_salt))
            return None

    # -- /compose -------------------------------------------------------------------------
    @app_commands.command(name="compose")
    @app_commands.describe(**describe("style", "bars", "tempo", "key", "time_signature", "form", "temperature",
                                      "seed", "loop", sound=SOUND_HELP, video=VIDEO_HELP, layers=LAYERS_HELP,
                                      stinger=STINGER_HELP, score=SCORE_HELP))
    @app_commands.choices(form=choices("form"), time_signature=choices("time_signature"), sound=SOUND_CHOICES,
                          stinger=STINGER_CHOICES)
    async def compose(
        self,
        interaction: discord.Interaction,
        style: str,
        bars: BARS = default("bars"),
        tempo: TEMPO | None = default("tempo"),
        key: str | None = default("key"),
        time_signature: str = default("time_signature"),
        form: str = default("form"),
        sound: str = DEFAULT_SOUND,
        temperature: TEMPERATURE = default("temperature"),
        seed: SEED | None = default("seed"),
        loop: bool = default("loop"),
        video: bool = False,
        layers: bool = False,
        stinger: str | None = None,
        score: bool = False,
    ):
        """Compose an original piece of game music in a composer's style."""
        request = GenerationRequest(style=style, bars=bars, tempo=tempo, key=key, time_signature=time_signature,
                                    form=form, temperature=temperature, seed=seed, loop=loop)
        formats = post_formats(video, score) + game_formats(loop, layers, stinger)
        await self.make(interaction, Job(request=request, sound=sound, formats=formats), kind="compose")

    @compose.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction, current: str):
        return [app_commands.Choice(name=name, value=name) for name in self.catalog.suggest(current, limit=25)]

    # -- buttons (called by PieceView) ------------------------------------------------------
    async def reroll(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """The same request (and the same starting piece, for a remix) with a new seed."""
        request = (await request_of(self.bot.db, row)).replace(seed=_new_seed())
        await self.make(interaction, job_from_row(row, request=request), kind="reroll", parent_id=row.id)

    async def variation(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        piece = piece_from_row(row)
        request = variation_request(piece, GenerationRequest.from_params(row.params or {}), seed=_new_seed())
        await self.make(interaction, job_from_row(row, request=request), kind="variation", parent_id=row.id)

    async def extend(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        piece = piece_from_row(row)
        if piece.n_bars >= MAX_BARS:
            raise UserError(f"This piece already has {MAX_BARS} bars, the most I can write.")
        request = extend_request(piece, GenerationRequest.from_params(row.params or {}), seed=_new_seed())
        await self.make(interaction, job_from_row(row, request=request), kind="extend", parent_id=row.id)

    async def stems(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """One audio file per voice in a zip, privately: game developers mix their own."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        job = job_from_row(row, piece=piece_from_row(row), formats=("stems",))
        result = await self.bot.studio.submit(job)
        file = discord.File(io.BytesIO(result.files["stems"]), filename=f"mozart-{row.id}-stems.zip")
        await interaction.followup.send(f"Stems of piece #{row.id} ({result.sound}): one audio file per voice, "
                                        f"each as long as the piece, ready to mix.", file=file, ephemeral=True)

    async def layers(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """The piece at each intensity, bar for bar (a zip each), privately: a game cross-fades them."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        job = job_from_row(row, piece=piece_from_row(row), formats=(LAYERS_FORMAT,))
        result = await self.bot.studio.submit(job)
        files = [discord.File(io.BytesIO(data), filename=f"mozart-{row.id}-{file_ending(fmt)}")
                 for fmt, data in result.files.items()]
        await interaction.followup.send(f"Layers of piece #{row.id} ({result.sound}): {', '.join(LAYERS)}; the same "
                                        f"bars, tempo and chords, to cross-fade at any bar.", files=files, ephemeral=True)

    async def score(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """The sheet music, posted for everyone in the channel: the first page, and MusicXML to open in MuseScore."""
        await interaction.response.defer(thinking=True)
        job = job_from_row(row, piece=piece_from_row(row), formats=SCORE_FORMATS)
        result = await self.bot.studio.submit(job)
        await interaction.followup.send(f"🎼 Score of piece #{row.id}: its first page, and the whole score as MusicXML "
                                        f"(MuseScore and other notation programs open it). Drums are in the MIDI.",
                                        files=score_files(result, f"mozart-{row.id}"))

    async def sound(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """A private menu of sounds; picking one re-renders the piece (``resound``)."""
        await interaction.response.send_message("Which sound?", view=SoundPicker(row, self), ephemeral=True)

    async def resound(self, interaction: discord.Interaction, row: db.PieceRow, sound: str) -> None:
        await self.make(interaction, job_from_row(row, piece=piece_from_row(row), sound=sound), kind="resound",
                        parent_id=row.id)


def _new_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


async def setup(bot) -> None:
    await bot.add_cog(Compose(bot))
