"""/styles, /help and /piece: what Mozart knows, how to use it, and re-posting a stored piece."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import UserError
from cogs.utils.options import DEFAULT_SOUND, SOUND_CHOICES
from cogs.utils.posting import piece_from_row
from composer.render.presets import SOUNDS
from composer.request import EXTEND_BARS, FORMS
from composer.studio import Job

HELP = f"""\
**/compose** `style` `bars` — an original piece. Styles combine a game and a composer
(`zelda-bach`, `doom-mozart`) or use one alone (`bach`). Options: tempo, key, time
signature, form ({", ".join(FORMS)}), sound ({", ".join(SOUNDS)}), temperature, seed.
**/remix** `midi` `style` — re-imagine an attached MIDI file; `keep` the melody, bass,
drums, chords or rhythm, and choose how much of the rest to change with `strength`.
**/styles** — every game and composer the model knows.
**/piece** `id` — post a stored piece again.

Under each piece: 🔁 reroll (new seed) · 🎲 variation · ⏩ extend by {EXTEND_BARS} bars · 📦 stems (one
audio file per voice) · 🎹 change sound. `loop:true` makes the end lead back into the beginning.
React 👍 or 👎: ratings decide what the next model learns from.
Same seed + same options = the same piece, so you can share recipes."""


class Info(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name="styles")
    async def styles(self, interaction: discord.Interaction):
        """List the games and composers the model was trained on."""
        catalog = self.bot.studio.generator.catalog
        embed = discord.Embed(title="Styles", colour=discord.Colour.blurple(),
                              description="Combine a game and a composer (`zelda-bach`) or use one alone.")
        games = [catalog.describe(label) for label in catalog.games + sorted(catalog.aliases)]
        composers = [catalog.describe(label) for label in catalog.composers]
        embed.add_field(name="Games", value=_clip("\n".join(games)), inline=False)
        embed.add_field(name="Composers", value=_clip("\n".join(composers)), inline=False)
        if catalog.aliases:
            notes = ", ".join(f"`{a}` is answered by `{b}`" for a, b in sorted(catalog.aliases.items()))
            embed.add_field(name="Aliases", value=_clip(
                f"{notes}: no music from those games is free to train on, so the closest free soundtrack "
                f"stands in. Train your own model on `data/games/<name>/` to replace an alias."), inline=False)
        embed.set_footer(text=f"model {self.bot.studio.generator.version}")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction):
        """How to use Mozart."""
        await interaction.response.send_message(HELP, ephemeral=True)

    @app_commands.command(name="piece")
    @app_commands.describe(id="The piece number shown in its post", sound="Re-render with another sound")
    @app_commands.choices(sound=SOUND_CHOICES)
    async def piece(self, interaction: discord.Interaction, id: app_commands.Range[int, 1], sound: str | None = None):
        """Post a stored piece again."""
        row = await db.get_piece(self.bot.db, id)
        if row is None:
            raise UserError(f"There is no piece #{id}.")
        sound = sound or (row.params or {}).get("sound", DEFAULT_SOUND)
        await self.bot.get_cog("Compose").make(interaction, Job(piece=piece_from_row(row), sound=sound),
                                               kind="resound", parent_id=row.id)


def _clip(text: str, limit: int = 1024) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def setup(bot) -> None:
    await bot.add_cog(Info(bot))
