"""/remix: re-imagine an attached MIDI file in a chosen style."""

from __future__ import annotations

import asyncio
import logging
from pathlib import PurePath

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.compose import SOUND_CHOICES
from cogs.utils.checks import by_user, compose_cooldown
from cogs.utils.errors import UserError
from composer.request import remix_request
from composer.midi_io import import_midi
from composer.studio import Job

log = logging.getLogger("mozart.remix")

MIDI_SUFFIXES = (".mid", ".midi", ".kar")
KEEP_CHOICES = [
    app_commands.Choice(name="melody — the tune stays, everything else is new", value="melody"),
    app_commands.Choice(name="melody + drums", value="melody,drums"),
    app_commands.Choice(name="melody + bass", value="melody,bass"),
    app_commands.Choice(name="bass + drums — a new tune over the old groove", value="bass,drums"),
    app_commands.Choice(name="chords — new melody over the old harmony", value="chords"),
    app_commands.Choice(name="rhythm — same rhythm, new notes", value="rhythm"),
    app_commands.Choice(name="nothing — only `strength` decides what stays", value=""),
]


class Remix(commands.Cog):
    """Remix people's MIDI files."""

    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name="remix")
    @app_commands.describe(
        midi="A MIDI file (.mid) to re-imagine",
        style="The style to re-imagine it in, like zelda-bach",
        keep="What to keep from the original",
        strength="How much of the rest to re-compose (0.1 = a touch, 1 = all of it)",
        sound="How it sounds in the MP3",
    )
    @app_commands.choices(keep=KEEP_CHOICES, sound=SOUND_CHOICES)
    @app_commands.checks.dynamic_cooldown(compose_cooldown, key=by_user)
    async def remix(self, interaction: discord.Interaction, midi: discord.Attachment, style: str,
                    keep: str = "melody", strength: app_commands.Range[float, 0.1, 1.0] = 0.7, sound: str = "chip"):
        """Re-imagine a MIDI file in the style of a game and a composer."""
        config = self.bot.config
        self.bot.studio.generator.catalog.resolve(style)
        if PurePath(midi.filename).suffix.lower() not in MIDI_SUFFIXES:
            raise UserError(f"'{midi.filename}' is not a MIDI file: attach a .mid file.")
        if midi.size > config.max_upload_bytes:
            raise UserError(f"'{midi.filename}' is {midi.size / 1e6:.1f} MB; the limit is "
                            f"{config.max_upload_bytes / 1e6:.1f} MB.")
        await interaction.response.defer(thinking=True)
        try:
            data = await midi.read()
        except discord.HTTPException:
            raise UserError("I could not download the attachment. Please try again.") from None
        if len(data) > config.max_upload_bytes:  # the declared size may lie
            raise UserError(f"'{midi.filename}' is larger than {config.max_upload_bytes / 1e6:.1f} MB.")
        source = await asyncio.to_thread(import_midi, data, max_bytes=config.max_upload_bytes,
                                         crop_bars=config.max_remix_bars, title=PurePath(midi.filename).stem)
        words = tuple(w for w in keep.split(",") if w)
        request = remix_request(source, style, keep=words, strength=strength)
        stored = await db.add_remix_source(self.bot.db, user_id=interaction.user.id, filename=midi.filename, midi=data)
        await self.bot.get_cog("Compose").make(
            interaction, Job(request=request, sound=sound), kind="remix", remix_source_id=stored.id,
            extra_params={"keep": list(words), "strength": strength, "source_file": midi.filename,
                          "source_bars": source.n_bars})

    @remix.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction, current: str):
        return await self.bot.get_cog("Compose").style_autocomplete(interaction, current)


async def setup(bot) -> None:
    await bot.add_cog(Remix(bot))
