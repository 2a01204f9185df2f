"""/privacy (what Mozart stores and why) and /forget-me (remove it, after a confirmation)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import report_error
from cogs.utils.limits import user_tag

log = logging.getLogger("mozart.privacy")

CONFIRM_TIMEOUT_S = 120
EXPIRY_INTERVAL_S = 3600.0  # how often uploads past their time are deleted


def privacy_text(config) -> str:
    """What /privacy says: everything Mozart keeps, for how long, and what it logs (SECURITY.md says the same)."""
    days = f"{config.upload_days:g} day{'s' if config.upload_days != 1 else ''}"
    return f"""\
**What Mozart keeps, and for how long**
• **Pieces** you ask for: the music (MIDI), the options and seed that made it, the model version, \
your Discord user id (so only you can use a piece's buttons) and where it was posted: server, channel and \
message (so 👍/👎 find it, and `/piece` stays in its server). Kept until you use `/forget-me`.
• **Ratings**: your 👍 or 👎 on a piece with your user id (one per person and piece), until you take the \
reaction back or use `/forget-me`. At most {config.ratings_per_day} new ratings a day count. Ratings teach the \
next model; your ratings of your own pieces never do. Exports for training carry a salted hash instead of \
any user id, and no Discord id at all.
• **Remix uploads**: the MIDI file you attach to `/remix` and its name, kept **{days}** so the remix can be \
rerolled, then deleted. Only you can compose from your file again.
• **Logs** name people by a salted pseudonym, never by user, server, channel or message id.
Nothing else (no messages, no server members, no profile data). What you make in a DM stays private: \
`/piece` and `/stats` only show pieces of the server they are used in, or your own.

**/forget-me** deletes your ratings and your remix uploads, removes your user id and where they were posted \
from the pieces you asked for, and takes those posts down (they stay in the database, anonymous, because \
other people may have rated them). Exports made afterwards contain nothing of yours."""


def removed_text(data: db.ForgottenData) -> str:
    return (f"{data.ratings} rating{'s' if data.ratings != 1 else ''}, "
            f"{data.remix_sources} remix upload{'s' if data.remix_sources != 1 else ''}, and your user id on "
            f"{data.pieces} piece{'s' if data.pieces != 1 else ''}")


class ForgetConfirm(discord.ui.View):
    """Delete / Keep buttons, for the person who asked only."""

    def __init__(self, user_id: int):
        super().__init__(timeout=CONFIRM_TIMEOUT_S)
        self.user_id = user_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.user_id

    async def on_error(self, interaction: discord.Interaction, error: Exception, item) -> None:
        await report_error(interaction, error)

    @discord.ui.button(label="Delete my data", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        client = interaction.client
        posts = await db.posts_of_user(client.db, self.user_id)
        removed = await db.forget_user(client.db, self.user_id)
        log.info("forgot user %s: %s, %d posts", user_tag(self.user_id, client.config.log_salt), removed, len(posts))
        taken_down = f" I'm taking down my {len(posts)} post{'s' if len(posts) != 1 else ''} of your pieces." \
            if posts else ""
        await interaction.response.edit_message(
            content=f"Done. I removed {removed_text(removed)}.{taken_down} If you rate or compose again, "
                    "that will be stored as before.", view=None)
        await take_down(client, posts)

    @discord.ui.button(label="Keep it", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was removed.", view=None)


async def take_down(client, posts: list[tuple[int, int]]) -> None:
    """Delete the bot's posts (channel id, message id): Discord shows who asked above each one."""
    for channel_id, message_id in posts:
        try:
            await client.http.delete_message(channel_id, message_id, reason="/forget-me")
        except discord.HTTPException:  # already gone, or no longer allowed there
            pass


class Privacy(commands.Cog):
    def __init__(self, bot):
        self.bot = bot
        self._expiry: asyncio.Task | None = None

    async def cog_load(self) -> None:
        self._expiry = asyncio.create_task(self._expire_uploads(), name="expire-uploads")

    async def cog_unload(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()

    async def _expire_uploads(self) -> None:
        """Every hour: delete remix uploads (and their names) older than MOZART_UPLOAD_DAYS."""
        while True:
            try:
                removed = await db.expire_uploads(self.bot.db, dt.timedelta(days=self.bot.config.upload_days))
                if removed:
                    log.info("deleted %d remix uploads older than %g days", removed, self.bot.config.upload_days)
            except db.DatabaseError:
                log.warning("could not delete old remix uploads; trying again in an hour")
            await asyncio.sleep(EXPIRY_INTERVAL_S)

    @app_commands.command(name="privacy")
    async def privacy(self, interaction: discord.Interaction):
        """What Mozart stores about you, for how long, and why."""
        await interaction.response.send_message(privacy_text(self.bot.config), ephemeral=True)

    @app_commands.command(name="forget-me")
    async def forget_me(self, interaction: discord.Interaction):
        """Remove your ratings, uploads and user id from Mozart (asks to confirm first)."""
        found = await db.user_data_counts(self.bot.db, interaction.user.id)
        if not any(found):
            await interaction.response.send_message("I have nothing stored about you.", ephemeral=True)
            return
        await interaction.response.send_message(
            f"This removes {removed_text(found)}, and takes down my posts of your pieces. It cannot be undone. "
            "Go ahead?",
            view=ForgetConfirm(interaction.user.id), ephemeral=True)


async def setup(bot) -> None:
    await bot.add_cog(Privacy(bot))
