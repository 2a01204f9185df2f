"""/privacy (what Mozart stores and why) and /forget-me (remove it, after a confirmation)."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import report_error
from cogs.utils.limits import user_tag

log = logging.getLogger("mozart.privacy")

CONFIRM_TIMEOUT_S = 120

PRIVACY = """\
**What Mozart stores, and why**
• **Pieces** you ask for: the music (MIDI), the options and seed that made it, the model version, \
your Discord user id (so only you can use a piece's buttons) and where it was posted (so 👍/👎 find it).
• **Ratings**: your 👍 or 👎 on a piece with your user id (one rating per person and piece). \
Ratings are the feedback the next model learns from: they are exported with every user id replaced by \
a salted hash, and no Discord id leaves the bot's database.
• **Remix uploads**: the MIDI file you attach to `/remix`, kept so the remix can be rerolled.
• Logs name people only by a salted pseudonym, never by user id.
Nothing else (no messages, no server members, no profile data).

**/forget-me** deletes your ratings and your remix uploads and removes your user id from the pieces you \
asked for (they stay, anonymous, because other people may have rated them). Exports made afterwards \
contain nothing of yours."""


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
        removed = await db.forget_user(interaction.client.db, self.user_id)
        log.info("forgot user %s: %s", user_tag(self.user_id, interaction.client.config.log_salt), removed)
        await interaction.response.edit_message(
            content=f"Done. I removed {removed_text(removed)}. If you rate or compose again, "
                    "that will be stored as before.", view=None)

    @discord.ui.button(label="Keep it", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was removed.", view=None)


class Privacy(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name="privacy")
    async def privacy(self, interaction: discord.Interaction):
        """What Mozart stores about you, and why."""
        await interaction.response.send_message(PRIVACY, ephemeral=True)

    @app_commands.command(name="forget-me")
    async def forget_me(self, interaction: discord.Interaction):
        """Remove your ratings, uploads and user id from Mozart (asks to confirm first)."""
        found = await db.user_data_counts(self.bot.db, interaction.user.id)
        if not any(found):
            await interaction.response.send_message("I have nothing stored about you.", ephemeral=True)
            return
        await interaction.response.send_message(
            f"This removes {removed_text(found)}. It cannot be undone. Go ahead?",
            view=ForgetConfirm(interaction.user.id), ephemeral=True)


async def setup(bot) -> None:
    await bot.add_cog(Privacy(bot))
