"""/compose and the buttons under a piece: reroll, variation, extend, change sound."""

from __future__ import annotations

import logging
import secrets
import time

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.checks import by_user, compose_cooldown
from cogs.utils.errors import UserError
from cogs.utils.posting import deliver, piece_from_row
from composer.request import MAX_BARS, GenerationRequest, extend_request, variation_request
from composer.grid import parse_key, parse_time_signature
from composer.studio import Job

log = logging.getLogger("mozart.compose")

FORM_CHOICES = [
    app_commands.Choice(name="AABA — a theme, its return, a bridge, the theme again", value="AABA"),
    app_commands.Choice(name="ABAC — theme, contrast, theme, new ending", value="ABAC"),
    app_commands.Choice(name="rondo — ABACA, the theme keeps coming back", value="rondo"),
    app_commands.Choice(name="through — no repeats, always moving", value="through"),
]
TIME_CHOICES = [app_commands.Choice(name=ts, value=ts) for ts in ("4/4", "3/4", "6/8", "2/4")]
SOUND_CHOICES = [app_commands.Choice(name=n, value=n) for n in ("chip", "orchestra", "piano")]
PROGRESS_EDIT_INTERVAL_S = 1.5
EXTEND_BARS = 8


class Compose(commands.Cog):
    """Compose new pieces and build on posted ones."""

    def __init__(self, bot):
        self.bot = bot

    @property
    def catalog(self):
        return self.bot.studio.generator.catalog

    # -- shared by every command that makes a piece ---------------------------------------
    async def make(self, interaction: discord.Interaction, job: Job, *, kind: str, parent_id: int | None = None,
                   extra_params: dict | None = None, remix_source_id: int | None = None) -> int | None:
        """Defer, queue the job with progress edits, then post the result."""
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)
        last_edit = [0.0]

        async def update(text: str) -> None:
            now = time.monotonic()
            if now - last_edit[0] >= PROGRESS_EDIT_INTERVAL_S or text.startswith("Queued"):
                last_edit[0] = now
                await interaction.edit_original_response(content=f"⏳ {text}")

        result = await self.bot.studio.submit(job, update)
        return await deliver(self.bot, interaction, result, kind=kind, parent_id=parent_id,
                             extra_params=extra_params, remix_source_id=remix_source_id)

    # -- /compose -------------------------------------------------------------------------
    @app_commands.command(name="compose")
    @app_commands.describe(
        style="A game and a composer, like zelda-bach, or one of them alone",
        bars="Length in bars (1-128)",
        tempo="Beats per minute (default: the style's usual tempo)",
        key="Key, like 'D minor' or 'Bb major' (default: the model's choice)",
        time_signature="Metre",
        form="How sections repeat, so the theme comes back",
        sound="How it sounds in the MP3",
        temperature="Lower is safer, higher is wilder (default 0.9)",
        seed="Same seed and options give the same piece",
    )
    @app_commands.choices(form=FORM_CHOICES, time_signature=TIME_CHOICES, sound=SOUND_CHOICES)
    @app_commands.checks.dynamic_cooldown(compose_cooldown, key=by_user)
    async def compose(
        self,
        interaction: discord.Interaction,
        style: str,
        bars: app_commands.Range[int, 1, MAX_BARS] = 32,
        tempo: app_commands.Range[int, 30, 300] | None = None,
        key: str | None = None,
        time_signature: str = "4/4",
        form: str = "AABA",
        sound: str = "chip",
        temperature: app_commands.Range[float, 0.1, 2.0] = 0.9,
        seed: app_commands.Range[int, 0, 2**31 - 1] | None = None,
    ):
        """Compose an original piece of game music in a composer's style."""
        request = GenerationRequest(style=style, bars=bars, tempo=tempo, key=key,
                                    time_signature=parse_time_signature(time_signature), form=form,
                                    temperature=temperature, seed=seed)
        # Everything checkable is checked before deferring, so mistakes get a private answer.
        self.catalog.resolve(style)
        if key:
            parse_key(key)
        if form != "through" and bars < len(form if form != "rondo" else "ABACA"):
            form = request.form = "through"
        request.validate()
        await self.make(interaction, Job(request=request, sound=sound), kind="compose")

    @compose.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction, current: str):
        return [app_commands.Choice(name=name, value=name) for name in self.catalog.suggest(current, limit=25)]

    # -- buttons (called by PieceView) ------------------------------------------------------
    async def reroll(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        params = dict(row.params or {})
        fields = GenerationRequest.__dataclass_fields__
        request = GenerationRequest(**{k: v for k, v in params.items() if k in fields and k not in ("seed",)})
        request.time_signature = tuple(request.time_signature)
        request.seed = secrets.randbelow(2**31)
        if row.kind == "remix":
            raise UserError("Reroll works on composed pieces; run /remix again for a new remix.")
        await self.make(interaction, Job(request=request, sound=params.get("sound", "chip")), kind="reroll",
                        parent_id=row.id)

    async def variation(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        piece = piece_from_row(row)
        request = variation_request(piece, share=0.25, seed=secrets.randbelow(2**31))
        await self.make(interaction, Job(request=request, sound=(row.params or {}).get("sound", "chip")),
                        kind="variation", parent_id=row.id)

    async def extend(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        piece = piece_from_row(row)
        if piece.n_bars >= MAX_BARS:
            raise UserError(f"This piece already has {MAX_BARS} bars, the most I can write.")
        request = extend_request(piece, bars=EXTEND_BARS, seed=secrets.randbelow(2**31))
        await self.make(interaction, Job(request=request, sound=(row.params or {}).get("sound", "chip")),
                        kind="extend", parent_id=row.id)

    async def resound(self, interaction: discord.Interaction, row: db.PieceRow, sound: str) -> None:
        piece = piece_from_row(row)
        await self.make(interaction, Job(piece=piece, sound=sound), kind="resound", parent_id=row.id)


async def setup(bot) -> None:
    await bot.add_cog(Compose(bot))
