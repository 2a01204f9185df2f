"""/remix: re-imagine an attached MIDI file in a chosen style."""

from __future__ import annotations

import logging
from pathlib import PurePath

import discord
from discord import app_commands
from discord.ext import commands

from cogs.utils.errors import UserError
from cogs.utils.options import DEFAULT_SOUND, SOUND_CHOICES, SOUND_HELP, STRENGTH, choice_list, default, describe
from composer.generate.request import KEEP_PRESETS, GenerationRequest, remix_request
from db import PieceKind
from service.jobs import Job

log = logging.getLogger("mozart.remix")

MIDI_SUFFIXES = (".mid", ".midi", ".kar")


class Remix(commands.Cog):
    """Remix people's MIDI files."""

    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name="remix")
    @app_commands.describe(**describe("style", "keep", "strength", midi="A MIDI file (.mid) to re-imagine",
                                      sound=SOUND_HELP))
    @app_commands.choices(keep=choice_list(KEEP_PRESETS), sound=SOUND_CHOICES)
    async def remix(self, interaction: discord.Interaction, midi: discord.Attachment, style: str,
                    keep: str = ",".join(default("keep")), strength: STRENGTH = default("strength"),
                    sound: str = DEFAULT_SOUND):
        """Re-imagine a MIDI file in the style of a game and a composer."""
        config = self.bot.config
        words = tuple(w for w in keep.split(",") if w)
        # Style, keep and strength are checked before anything is downloaded.
        self.bot.studio.generator.prepare(GenerationRequest(style=style, keep=words, strength=strength))
        if PurePath(midi.filename).suffix.lower() not in MIDI_SUFFIXES:
            raise UserError(f"'{midi.filename}' is not a MIDI file: attach a .mid file.")
        if midi.size > config.max_upload_bytes:
            raise UserError(f"'{midi.filename}' is {midi.size / 1e6:.1f} MB; the limit is "
                            f"{config.max_upload_bytes / 1e6:.1f} MB.")

        async def load():
            """Once the person's turn has come: download, then parse in a child process (never here)."""
            try:
                data = await midi.read()
            except discord.HTTPException:
                raise UserError("I could not download the attachment. Please try again.") from None
            if len(data) > config.max_upload_bytes:  # the declared size may lie
                raise UserError(f"'{midi.filename}' is larger than {config.max_upload_bytes / 1e6:.1f} MB.")
            source = await self.bot.studio.parse_midi(data, max_bytes=config.max_upload_bytes,
                                                      crop_bars=config.max_remix_bars,
                                                      title=PurePath(midi.filename).stem)
            request = remix_request(source, style, keep=words, strength=strength)
            return (Job(request=request, sound=sound), {"source_file": midi.filename, "source_bars": source.n_bars},
                    (midi.filename, data))

        await self.bot.get_cog("Compose").make(interaction, None, kind=PieceKind.REMIX, load=load)

    @remix.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction, current: str):
        return await self.bot.get_cog("Compose").style_autocomplete(interaction, current)


async def setup(bot) -> None:
    await bot.add_cog(Remix(bot))
