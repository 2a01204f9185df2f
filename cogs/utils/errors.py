"""Turning failures into friendly, ephemeral answers (with an error id the log shows too)."""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from cogs.utils.limits import user_tag
from composer.errors import MozartError
from db.errors import DatabaseError

log = logging.getLogger("mozart.errors")
_PROCESS_SALT = secrets.token_hex(16)  # for a client without the bot's config (tests, scripts)


def _log_salt(interaction: discord.Interaction) -> str:
    config = getattr(interaction.client, "config", None)
    return getattr(config, "log_salt", None) or _PROCESS_SALT


class UserError(MozartError):
    """A problem with what the user asked for; the message is shown as is."""


async def reply(interaction: discord.Interaction, content: str | None = None, **kwargs) -> None:
    """Answer privately, before or after ``defer()``.

    After a public ``defer(thinking=True)`` the first follow-up would replace the public
    "thinking…" message, so that message is deleted first and the answer sent privately.
    """
    kwargs.setdefault("ephemeral", True)
    if not interaction.response.is_done():
        await interaction.response.send_message(content, **kwargs)
        return
    if kwargs["ephemeral"]:
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            pass
    await interaction.followup.send(content, **kwargs)


def user_message(error: BaseException) -> tuple[str, bool]:
    """(message, expected): expected errors are the user's to fix and are not logged as bugs."""
    original = getattr(error, "original", None) or getattr(error, "__cause__", None) or error
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here.", True
    if isinstance(original, MozartError):
        return str(original), True
    if isinstance(original, DatabaseError):
        return str(original), False
    return "", False


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user what went wrong, privately; log unexpected errors with an id they can quote."""
    message, expected = user_message(error)
    command = interaction.command.qualified_name if interaction.command else interaction.data.get("custom_id", "?")
    if not expected:
        error_id = secrets.token_hex(4)
        original = getattr(error, "original", error)
        user = user_tag(interaction.user.id, _log_salt(interaction))  # a pseudonym, as in the job log
        log.error("error %s in %s for user %s", error_id, command, user,
                  exc_info=(type(original), original, original.__traceback__),
                  extra={"error_id": error_id, "user": user, "command": command})
        message = (message or f"Something went wrong in '{command}'.") + f" (error id `{error_id}`)"
    try:
        await reply(interaction, message)
    except discord.HTTPException:
        log.warning("could not deliver an error message for %s", command, exc_info=True)
