"""/play, /stop, /skip and the ▶️ button: a piece played in the person's voice channel.

The checks come first and answer at once (not in a voice channel, no Connect or Speak permission there,
already playing elsewhere in the server, no such piece); then the piece is rendered like any job (the
person's turn, in-process or on a composing worker) and queued in the server's player
(``cogs/utils/player.py``), which joins, plays and leaves.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import UserError
from cogs.utils.player import GuildPlayer, Track
from cogs.utils.posting import JobKind, job_from_row, piece_from_row
from composer.render.audio import require_ffmpeg
from service.jobs import Result

log = logging.getLogger("mozart.voice")

PLAY_FORMAT = "ogg"  # what the player streams: Vorbis, as small as the MP3 and without its padding


class Voice(commands.Cog):
    """Pieces played in voice channels, one queue per server."""

    def __init__(self, bot):
        self.bot = bot
        self.players: dict[int, GuildPlayer] = {}

    async def cog_load(self) -> None:
        # discord.py's voice handshake logs the channel's and server's ids at INFO; the bot logs none
        logging.getLogger("discord.voice_state").setLevel(logging.WARNING)

    async def cog_unload(self) -> None:
        for player in list(self.players.values()):
            await player.close()

    def player(self, guild: discord.Guild) -> GuildPlayer:
        if guild.id not in self.players:
            self.players[guild.id] = GuildPlayer(guild, idle_s=self.bot.config.voice_idle_s,
                                                 ffmpeg=require_ffmpeg("playing in a voice channel"))
        return self.players[guild.id]

    # -- the checks ----------------------------------------------------------------------
    def _listening_channel(self, interaction: discord.Interaction) -> discord.VoiceChannel:
        """The voice channel to play in, or a UserError saying why not."""
        guild = interaction.guild
        if guild is None:
            raise UserError("I can only play in a server's voice channel, not in a DM.")
        voice = getattr(interaction.user, "voice", None)
        channel = voice.channel if voice is not None else None
        if channel is None:
            raise UserError("Join a voice channel first, then ask again: I play in the channel you are in.")
        permissions = channel.permissions_for(guild.me)
        missing = [name for name, ok in (("Connect", permissions.connect), ("Speak", permissions.speak)) if not ok]
        if missing:
            raise UserError(f"I don't have the {' and '.join(missing)} permission{'s' if len(missing) > 1 else ''} "
                            f"in 🔊 {channel.name}. A server admin can grant it in the channel's settings "
                            f"(Permissions → Mozart).")
        player = self.players.get(guild.id)
        if player is not None and player.busy and player.channel_id != channel.id:
            playing_in = guild.get_channel(player.channel_id)
            raise UserError(f"I'm already playing in 🔊 {playing_in.name if playing_in else 'another channel'}. "
                            f"Join that channel to listen, or use `/stop` there first.")
        return channel

    async def _piece(self, interaction: discord.Interaction, piece_id: int | None) -> db.PieceRow:
        if piece_id is None:
            row = await db.latest_piece(self.bot.db, user_id=interaction.user.id, guild_id=interaction.guild_id)
            if row is None:
                raise UserError("There is no piece here yet. Try `/compose style:zelda-bach` first!")
            return row
        row = await db.piece_in_reach(self.bot.db, piece_id, user_id=interaction.user.id,
                                      guild_id=interaction.guild_id)
        if row is None:
            stored = await db.get_piece(self.bot.db, piece_id)
            if stored is not None and stored.user_id is None and stored.guild_id is None:
                raise UserError(f"Piece #{piece_id} was forgotten: its author used `/forget-me`, so it is no "
                                f"longer tied to this server and I can't play it here.")
            raise UserError(f"There is no piece #{piece_id} here. I can play pieces made in this server, or your own.")
        return row

    # -- playing --------------------------------------------------------------------------
    async def queue_piece(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """Check, render (the person's turn), queue; say where it plays. Used by /play and ▶️."""
        channel = self._listening_channel(interaction)
        title = f"piece #{row.id} ({row.style})"

        async def post(result: Result) -> None:
            player = self.player(interaction.guild)
            channel_now = self._listening_channel(interaction)  # still there, after the render?
            ahead = player.add(Track(row.id, title, result.files[PLAY_FORMAT], channel_now.id))
            where = f"🔊 {channel_now.name}"
            await interaction.followup.send(f"▶️ Playing {title} in {where}." if not ahead else
                                            f"▶️ Queued {title} in {where}: {ahead} before it.")

        log.info("voice: %s asked for in a voice channel of %d members", title, len(channel.members))
        job = job_from_row(row, piece=piece_from_row(row), formats=(PLAY_FORMAT,))
        await self.bot.get_cog("Compose").make(interaction, job, kind=JobKind.PLAY, parent_id=row.id, post=post)

    @app_commands.command(name="play")
    @app_commands.guild_only()
    @app_commands.describe(id="The piece number shown in its post (default: the latest piece here)")
    async def play(self, interaction: discord.Interaction, id: app_commands.Range[int, 1] | None = None):
        """Play a piece in your voice channel."""
        self._listening_channel(interaction)  # a refusal answers before anything is looked up
        await self.queue_piece(interaction, await self._piece(interaction, id))

    async def play_button(self, interaction: discord.Interaction, row: db.PieceRow) -> None:
        """▶️ under a piece (PieceView): anyone in the channel may play it."""
        await self.queue_piece(interaction, row)

    @app_commands.command(name="stop")
    @app_commands.guild_only()
    async def stop(self, interaction: discord.Interaction):
        """Stop playing, empty the queue and leave the voice channel."""
        player = self.players.get(interaction.guild_id)
        if player is None or (not player.busy and player.voice is None):
            raise UserError("I'm not playing anything here.")
        await player.stop()
        await interaction.response.send_message("⏹️ Stopped, and the queue is empty.")

    @app_commands.command(name="skip")
    @app_commands.guild_only()
    async def skip(self, interaction: discord.Interaction):
        """Skip the piece playing now; the next in the queue starts."""
        player = self.players.get(interaction.guild_id)
        if player is None or player.current is None:
            raise UserError("Nothing is playing here.")
        skipped = player.skip()
        await interaction.response.send_message(f"⏭️ Skipped {skipped.title}."
                                                + (f" {len(player.queue)} left in the queue." if player.queue else ""))

    # -- leaving an empty channel ---------------------------------------------------------
    @commands.Cog.listener()
    async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                    after: discord.VoiceState) -> None:
        player = self.players.get(member.guild.id)
        if member.bot or player is None:  # the bot's own comings and goings, or another bot's
            return
        voice = player.voice
        if voice is None or voice.channel is None or before.channel is None or before.channel.id != voice.channel.id:
            return
        if not any(not m.bot for m in voice.channel.members):
            log.info("voice: the channel emptied, leaving")
            await player.leave()


async def setup(bot) -> None:
    await bot.add_cog(Voice(bot))
