"""Per-user cooldowns shared by the commands that compose."""

from __future__ import annotations

import discord
from discord import app_commands


def compose_cooldown(interaction: discord.Interaction) -> app_commands.Cooldown | None:
    """One composition per user every ``config.compose_cooldown_s`` seconds (0 disables it)."""
    seconds = interaction.client.config.compose_cooldown_s
    return app_commands.Cooldown(1, seconds) if seconds > 0 else None


def by_user(interaction: discord.Interaction) -> int:
    return interaction.user.id
