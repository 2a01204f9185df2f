"""/compose and the buttons under a piece: reroll, variation, extend, change sound."""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from typing import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import UserError
from cogs.utils.limits import log_job, user_tag
from cogs.utils.options import (BARS, DEFAULT_SOUND, LAYERS_HELP, SCORE_HELP, SEED, SOUND_CHOICES, SOUND_HELP,
                                STINGER_CHOICES, STINGER_HELP, TEMPERATURE, TEMPO, VIDEO_HELP, choices, default,
                                describe)
from cogs.utils.posting import (SCORE_PARAM, VIDEO_PARAM, JobKind, deliver, game_formats, job_from_row, lineage,
                                piece_from_row, post_formats, score_files)
from cogs.utils.replay import request_of
from cogs.utils.views import SoundPicker
from composer.generate.layers import LAYERS
from composer.render.api import SCORE_FORMATS, VIDEO_FORMAT
from composer.generate.request import (MAX_BARS, GenerationRequest, check_music_seconds, extend_request, new_seed,
                              variation_request)
from db import PieceKind
from service.jobs import LAYERS_FORMAT, PROGRESS_EVERY_S, Job, Result, file_ending

log = logging.getLogger("mozart.compose")

Load = Callable[[], Awaitable[tuple[Job, dict | None, tuple[str, bytes] | None]]]  # see Compose.make
Post = Callable[[Result], Awaitable[int | None]]


class Compose(commands.Cog):
    """Compose new pieces and build on posted ones."""

    def __init__(self, bot):
        self.bot = bot

    @property
    def catalog(self):
        return self.bot.studio.generator.catalog

    # -- shared by every command that makes a piece ---------------------------------------
    async def make(self, interaction: discord.Interaction, job: Job | None, *, kind: PieceKind | JobKind, parent_id: int | None = None,
                   extra_params: dict | None = None, remix_upload: tuple[str, bytes] | None = None,
                   load: Load | None = None, post: Post | None = None, ephemeral: bool = False) -> int | None:
        """Check the request, take the person's turn (``bot.limiter``: wait in line, or refused when far over),
        defer, queue the job with progress edits, then post the result; one job-log line however it ends.

        Every job goes through here: compose, remix, reroll, variation, extend, resound, stems. ``load``
        (``async () -> (job, extra_params, remix_upload)``) builds the job once the turn has come: what
        downloads or parses a file waits its turn like the rest. ``post(result)`` replaces the public post
        (stems go privately). ``remix_upload`` (file name, bytes) is kept with the remix once it is made: a
        request that is refused or fails stores nothing of the person's file."""
        if self.bot.limiter.quiet(interaction.user.id):  # told to try again later, and asking again at once
            return None  # unanswered: Discord tells them it failed, and the flood costs nothing
        if job is not None:  # a bad request is answered at once, privately, before deferring
            job = await self._checked(job)
        seconds: dict[str, float] = {}  # limited, queued, generate, render, upload: for the job log
        result, outcome = None, "ok"
        try:
            # Over the person's limits: waits in their line (told its place); far over: refused now.
            with self.bot.limiter.enter(interaction.user.id) as turn:
                if not interaction.response.is_done():
                    await interaction.response.defer(thinking=True, ephemeral=ephemeral)
                last_edit = [0.0]

                async def update(text: str) -> None:
                    now = time.monotonic()
                    if now - last_edit[0] >= PROGRESS_EVERY_S or text.startswith("Queued"):
                        last_edit[0] = now
                        await interaction.edit_original_response(content=f"⏳ {text}")

                seconds["limited"] = await turn.wait(update)
                if load is not None:
                    job, more_params, remix_upload = await load()
                    job = await self._checked(job)
                    extra_params = {**(extra_params or {}), **(more_params or {})}
                if VIDEO_FORMAT in job.formats:  # kept with the piece, so what is made from it comes with a video too
                    extra_params = {**(extra_params or {}), VIDEO_PARAM: True}
                if SCORE_FORMATS[0] in job.formats:  # ... and with its score
                    extra_params = {**(extra_params or {}), SCORE_PARAM: True}
                # The person's turn is held until the work has stopped: a job past its deadline is killed first.
                result = await self.bot.studio.submit(dataclasses.replace(job, owner=interaction.user.id), update,
                                                      seconds=seconds)
                if post is not None:
                    return await post(result)
                remix_source_id = await self._keep_upload(interaction, remix_upload) if remix_upload else None
                return await deliver(self.bot, interaction, result, kind=kind, parent_id=parent_id,
                                     extra_params=extra_params, remix_source_id=remix_source_id)
        except BaseException as e:
            outcome = type(e).__name__
            raise
        finally:
            piece = result.piece if result is not None else getattr(job, "piece", None)
            request = getattr(job, "request", None)
            log_job(user_id=interaction.user.id, salt=self.bot.config.log_salt, kind=kind,
                    style=request.style if request is not None else piece.extra.get("style") if piece else None,
                    bars=piece.n_bars if piece is not None else request.bars if request is not None else None,
                    seconds=seconds, outcome=outcome)

    async def _checked(self, job: Job) -> Job:
        """``job`` with its request prepared (validated, seed drawn) and a model version assigned; a
        piece to re-render must not be longer than a request may make."""
        if job.request is not None:
            job = dataclasses.replace(job, request=self.bot.studio.generator.prepare(job.request).request)
            if job.version is None and self.bot.versions is not None:  # versions compete for 👍 (Thompson)
                job = dataclasses.replace(job, version=await self.bot.versions.assign())
        elif job.piece is not None:
            check_music_seconds(job.piece.seconds)
        return job

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
        await self.make(interaction, Job(request=request, sound=sound, formats=formats), kind=PieceKind.COMPOSE)

    @compose.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction, current: str):
        return [app_commands.Choice(name=name, value=name) for name in self.catalog.suggest(current, limit=25)]

    # -- buttons (called by PieceView) ------------------------------------------------------
    # Each builds its job after the person's turn has come: a reroll of a remix parses the upload again.
    async def reroll(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """The same request (and the same starting piece, for a remix) with a new seed."""
        async def load():
            request = await request_of(self.bot.db, row, parse=self.bot.studio.parse_midi,
                                       user_id=interaction.user.id)
            return job_from_row(row, request=request.replace(seed=new_seed())), lineage(row), None

        await self.make(interaction, None, kind=PieceKind.REROLL, parent_id=row.id, load=load)

    async def variation(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        piece = piece_from_row(row)
        request = variation_request(piece, GenerationRequest.from_params(row.params or {}), seed=new_seed())
        await self.make(interaction, job_from_row(row, request=request), kind=PieceKind.VARIATION, parent_id=row.id,
                        extra_params=lineage(row))

    async def extend(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        piece = piece_from_row(row)
        if piece.n_bars >= MAX_BARS:
            raise UserError(f"This piece already has {MAX_BARS} bars, the most I can write.")
        request = extend_request(piece, GenerationRequest.from_params(row.params or {}), seed=new_seed())
        await self.make(interaction, job_from_row(row, request=request), kind=PieceKind.EXTEND, parent_id=row.id,
                        extra_params=lineage(row))

    async def stems(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """One audio file per voice in a zip, privately: game developers mix their own. It takes the
        person's turn like any piece (it renders the piece once per voice)."""
        async def post(result) -> None:
            data = result.files["stems"]
            limit = getattr(interaction, "filesize_limit", None)
            if limit is not None and len(data) > limit:
                await interaction.followup.send(
                    f"The stems of piece #{row.id} come to {len(data) / 2**20:.1f} MB, over this channel's upload "
                    f"limit ({limit / 2**20:.0f} MB). A shorter piece (or a server with a higher limit) will fit; "
                    f"the MIDI in the post has every voice too.", ephemeral=True)
                return None
            file = discord.File(io.BytesIO(data), filename=f"mozart-{row.id}-stems.zip")
            await interaction.followup.send(f"Stems of piece #{row.id} ({result.sound}): one audio file per voice, "
                                            f"each as long as the piece, ready to mix.", file=file, ephemeral=True)
            return None

        job = job_from_row(row, piece=piece_from_row(row), formats=("stems",))
        await self.make(interaction, job, kind=JobKind.STEMS, parent_id=row.id, post=post, ephemeral=True)

    async def layers(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """The piece at each intensity, bar for bar (a zip each), privately: a game cross-fades them.
        It takes the person's turn like any piece."""
        async def post(result: Result) -> None:
            files = [discord.File(io.BytesIO(data), filename=f"mozart-{row.id}-{file_ending(fmt)}")
                     for fmt, data in result.files.items()]
            await interaction.followup.send(f"Layers of piece #{row.id} ({result.sound}): {', '.join(LAYERS)}; the "
                                            f"same bars, tempo and chords, to cross-fade at any bar.", files=files,
                                            ephemeral=True)

        job = job_from_row(row, piece=piece_from_row(row), formats=(LAYERS_FORMAT,))
        await self.make(interaction, job, kind=JobKind.LAYERS, parent_id=row.id, post=post, ephemeral=True)

    async def score(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """The sheet music, posted for everyone in the channel: the first page, and MusicXML to open in
        MuseScore. It takes the person's turn like any piece."""
        async def post(result: Result) -> None:
            await interaction.followup.send(f"🎼 Score of piece #{row.id}: its first page, and the whole score as "
                                            f"MusicXML (MuseScore and other notation programs open it). Drums are in "
                                            f"the MIDI.", files=score_files(result, f"mozart-{row.id}"))

        job = job_from_row(row, piece=piece_from_row(row), formats=SCORE_FORMATS)
        await self.make(interaction, job, kind=JobKind.SCORE, parent_id=row.id, post=post)

    async def sound(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """A private menu of sounds; picking one re-renders the piece (``resound``)."""
        await interaction.response.send_message("Which sound?", view=SoundPicker(row, self), ephemeral=True)

    async def resound(self, interaction: discord.Interaction, row: db.PieceRow, sound: str) -> None:
        await self.make(interaction, job_from_row(row, piece=piece_from_row(row), sound=sound), kind=PieceKind.RESOUND,
                        parent_id=row.id, extra_params=lineage(row))


async def setup(bot) -> None:
    await bot.add_cog(Compose(bot))
