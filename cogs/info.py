"""/styles, /help, /stats and /piece: what Mozart knows, how to use it, what people like, and
re-posting a stored piece."""

from __future__ import annotations

import datetime as dt
import time

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import UserError
from cogs.utils.options import SOUND_CHOICES
from cogs.utils.posting import job_from_row, piece_from_row, sound_of
from db import PieceKind
from composer.render.presets import SOUNDS
from composer.generate.request import EXTEND_BARS, FORMS

HELP = f"""\
**/compose** `style` `bars` — an original piece. Styles combine a game and a composer
(`zelda-bach`, `doom-mozart`) or use one alone (`bach`). Options: tempo, key, time
signature, form ({", ".join(FORMS)}), sound ({", ".join(SOUNDS)}), temperature, seed.
**/remix** `midi` `style` — re-imagine an attached MIDI file; `keep` the melody, bass,
drums, chords or rhythm, and choose how much of the rest to change with `strength`.
**/styles** — every game and composer the model knows.
**/piece** `id` — post a stored piece again.
**/play** `id` — play a piece in your voice channel (the latest here without an id) · **/skip** · **/stop**.
**/stats** — pieces made, the most liked styles, the top pieces of the week.
**/privacy** — what is stored and why · **/forget-me** — remove your data.

Under each piece: 🔁 reroll (new seed) · 🎲 variation · ⏩ extend by {EXTEND_BARS} bars · 📦 stems (one
audio file per voice) · 🎹 change sound · 🎼 score ·
▶️ play in your voice channel. `loop:true` makes the end lead back into the beginning;
`video:true` adds an MP4 of the piano roll scrolling with the music.
React 👍 or 👎: ratings decide what the next model learns from.
Same seed + same options = the same piece, so you can share recipes."""


STATS_DAYS = 7  # "of the week"
STATS_TOP = 5
STATS_CACHE_S = 60.0  # /stats counts every piece and rating: once a minute per server is enough


class Info(commands.Cog):
    def __init__(self, bot):
        self.bot = bot
        self._stats_cache: dict[int | None, tuple[float, db.PublicStats]] = {}  # guild -> (when, stats)

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
        embed.set_footer(text=f"models {', '.join(self.bot.studio.versions)}")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction):
        """How to use Mozart."""
        await interaction.response.send_message(HELP, ephemeral=True)

    async def _stats(self, guild_id: int | None) -> db.PublicStats:
        """This server's statistics, computed at most once every ``STATS_CACHE_S`` seconds."""
        now = time.monotonic()
        cached = self._stats_cache.get(guild_id)
        if cached is not None and now - cached[0] < STATS_CACHE_S:
            return cached[1]
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=STATS_DAYS)
        stats = await db.public_stats(self.bot.db, since=since, top=STATS_TOP, guild_id=guild_id)
        if len(self._stats_cache) > 1000:
            self._stats_cache.clear()
        self._stats_cache[guild_id] = (now, stats)
        return stats

    @app_commands.command(name="stats")
    async def stats(self, interaction: discord.Interaction):
        """Pieces made, the most liked styles and the top pieces of the week."""
        # Top pieces are this server's only: a piece made in another server or a DM is never linked here.
        stats = await self._stats(interaction.guild_id)
        embed = discord.Embed(title="Mozart so far", colour=discord.Colour.blurple(),
                              description=f"**{stats.pieces}** pieces composed · {stats.ratings} ratings "
                                          f"(👍 {stats.likes} · 👎 {stats.dislikes})")
        styles = [f"`{style}`: 👍 {likes} · 👎 {dislikes} ({pieces} pieces)"
                  for style, pieces, likes, dislikes in stats.styles[:STATS_TOP]]
        embed.add_field(name="Most liked styles", value="\n".join(styles) or "Nothing rated yet.", inline=False)
        top = [f"#{rated.piece.id} `{rated.piece.style}` 👍 {rated.likes} · 👎 {rated.dislikes}"
               + (f" · [listen]({_jump_url(rated.piece)})" if rated.piece.message_id else "")
               for rated in stats.top_pieces]
        embed.add_field(name=f"Top pieces of the last {STATS_DAYS} days" + (" here" if interaction.guild_id else ""),
                        value="\n".join(top) or ("None liked yet: react 👍 to the ones you enjoy!"
                                                 if interaction.guild_id else "Ask in a server to see its top pieces."),
                        inline=False)
        await interaction.response.send_message(embed=embed)

    @app_commands.command(name="piece")
    @app_commands.describe(id="The piece number shown in its post", sound="Re-render with another sound")
    @app_commands.choices(sound=SOUND_CHOICES)
    async def piece(self, interaction: discord.Interaction, id: app_commands.Range[int, 1], sound: str | None = None):
        """Post a stored piece again."""
        # Only a piece of this server, or one's own: pieces of other servers and of DMs stay where they were made.
        row = await db.piece_in_reach(self.bot.db, id, user_id=interaction.user.id, guild_id=interaction.guild_id)
        if row is None:
            raise UserError(f"There is no piece #{id} here. I can post pieces made in this server, or your own.")
        job = job_from_row(row, piece=piece_from_row(row), sound=sound or sound_of(row))
        await self.bot.get_cog("Compose").make(interaction, job, kind=PieceKind.RESOUND, parent_id=row.id)


def _jump_url(piece: db.PieceRow) -> str:
    return f"https://discord.com/channels/{piece.guild_id or '@me'}/{piece.channel_id}/{piece.message_id}"


def _clip(text: str, limit: int = 1024) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def setup(bot) -> None:
    await bot.add_cog(Info(bot))
