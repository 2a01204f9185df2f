"""/model (the bot's owner): the versions served, how people rate them, loading and retiring one."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

import db
from cogs.utils.errors import UserError
from composer.feedback.bandit import CREDIBLE_LEVEL, Tally
from service.versions import VersionError


def like_line(tally: Tally, digits: int = 0) -> str:
    """'👍 12 · 👎 4 · 75% liked (95% credible 51%–90%)' (shares to ``digits`` decimals), or 'not rated yet'."""
    if not tally.rated:
        return "not rated yet"
    low, high = tally.interval()
    return (f"👍 {tally.likes} · 👎 {tally.dislikes} · {tally.ratio:.{digits}%} liked "
            f"({CREDIBLE_LEVEL:.0%} credible {low:.{digits}%}–{high:.{digits}%})")


class Models(commands.Cog):
    """Serve several model versions side by side and see which one people like."""

    model = app_commands.Group(name="model", description="Model versions: list, load, retire (bot owner only)",
                               default_permissions=discord.Permissions(administrator=True))

    def __init__(self, bot):
        self.bot = bot

    async def _owner_only(self, interaction: discord.Interaction) -> None:
        if not await self.bot.is_owner(interaction.user):
            raise UserError("Only the bot's owner can manage model versions.")

    @model.command(name="list")
    async def list_versions(self, interaction: discord.Interaction):
        """Every version: pieces made, 👍, 👎, like ratio with its credible interval, share of requests."""
        await self._owner_only(interaction)
        stats = await db.like_ratio_by_model_version(self.bot.db)
        shares = self.bot.versions.shares(stats)
        embed = discord.Embed(title="Model versions", colour=discord.Colour.blurple(),
                              description="Requests go to served versions by Thompson sampling on their 👍 share "
                                          f"(each gets at least {self.bot.versions.floor:.0%}).")
        names = list(self.bot.studio.versions) + sorted(set(stats) - set(self.bot.studio.versions))
        for name in names[:25]:  # an embed holds at most 25 fields
            row = stats.get(name)
            tally = Tally(row.likes, row.dislikes) if row else Tally()
            state = f"serving · {shares[name]:.0%} of requests" if name in shares else "not served"
            embed.add_field(name=f"{name} ({state})", inline=False,
                            value=f"{row.pieces if row else 0} pieces · {like_line(tally)}")
        available = self.bot.versions.available()
        if available:
            embed.set_footer(text="Load with /model load: " + ", ".join(available)[:200])
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @model.command(name="load")
    @app_commands.describe(name="A checkpoint folder in the models folder (MOZART_MODELS_DIR)")
    async def load(self, interaction: discord.Interaction, name: str):
        """Serve another model version beside the current ones, without a restart."""
        await self._owner_only(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            version = await self.bot.versions.load(name)
        except VersionError as e:
            raise UserError(str(e)) from None
        await interaction.followup.send(f"Now serving **{version}** beside "
                                        f"{', '.join(v for v in self.bot.studio.versions if v != version)}. "
                                        "New requests are shared between them by their 👍 share.", ephemeral=True)

    @load.autocomplete("name")
    async def load_autocomplete(self, interaction: discord.Interaction, current: str):
        if not await self.bot.is_owner(interaction.user):  # the folders on the bot's disk are the owner's business
            return []
        return [app_commands.Choice(name=n, value=n) for n in self.bot.versions.available()
                if current.lower() in n.lower()][:25]

    @model.command(name="retire")
    @app_commands.describe(version="A served version (see /model list)")
    async def retire(self, interaction: discord.Interaction, version: str):
        """Stop serving a version; its pieces and ratings stay."""
        await self._owner_only(interaction)
        try:
            await self.bot.versions.retire(version)
        except VersionError as e:
            raise UserError(str(e)) from None
        await interaction.response.send_message(f"Retired **{version}**. Serving: {', '.join(self.bot.studio.versions)}.",
                                                ephemeral=True)

    @retire.autocomplete("version")
    async def retire_autocomplete(self, interaction: discord.Interaction, current: str):
        if not await self.bot.is_owner(interaction.user):
            return []
        return [app_commands.Choice(name=v, value=v) for v in self.bot.studio.versions if current.lower() in v.lower()][:25]


async def setup(bot) -> None:
    await bot.add_cog(Models(bot))
