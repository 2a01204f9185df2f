"""JSON shapes of Discord objects (users, members, guilds, channels, emoji), as the v10 API sends them.

Only what discord.py 2.x reads is filled in; see discord/types/*.py for the full shapes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# Intents (gateway) the fake honours when deciding whether to deliver an event.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
GUILD_VOICE_STATES = 1 << 7
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15

# Permissions.
ADMINISTRATOR = 1 << 3
# @everyone in the test guild: view, send, embed, attach, history, reactions, app commands...
EVERYONE_PERMISSIONS = (
    (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 18) | (1 << 31) | (1 << 38)
)
ALL_PERMISSIONS = (1 << 51) - 1
CONNECT, SPEAK = 1 << 20, 1 << 21  # joining a voice channel, and being heard in it

TEXT_CHANNEL = 0
DM_CHANNEL = 1
VOICE_CHANNEL = 2

# Application command option types.
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11


def iso(when: dt.datetime) -> str:
    return when.isoformat()


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        'id': str(user_id), 'username': name, 'global_name': name, 'discriminator': '0',
        'avatar': None, 'bot': bot, 'public_flags': 0, 'flags': 0,
    }


def bot_user(user_id: int, name: str) -> dict[str, Any]:
    """The bot's own user (GET /users/@me, READY.user) has a few more fields."""
    return {**user(user_id, name, bot=True), 'verified': True, 'mfa_enabled': False, 'email': None, 'locale': 'en-US'}


def member(user_payload: dict[str, Any], joined_at: dt.datetime, *, roles: list[int] = ()) -> dict[str, Any]:
    return {
        'user': user_payload, 'roles': [str(r) for r in roles], 'joined_at': iso(joined_at),
        'nick': None, 'avatar': None, 'deaf': False, 'mute': False, 'flags': 0, 'pending': False,
        'premium_since': None, 'communication_disabled_until': None,
    }


def role(role_id: int, name: str, permissions: int, *, position: int = 0, managed: bool = False) -> dict[str, Any]:
    return {
        'id': str(role_id), 'name': name, 'color': 0, 'colors': {'primary_color': 0}, 'hoist': False,
        'position': position, 'permissions': str(permissions), 'managed': managed, 'mentionable': False, 'flags': 0,
    }


def text_channel(channel_id: int, guild_id: int, name: str, *, position: int = 0) -> dict[str, Any]:
    return {
        'id': str(channel_id), 'type': TEXT_CHANNEL, 'guild_id': str(guild_id), 'name': name, 'position': position,
        'permission_overwrites': [], 'nsfw': False, 'topic': None, 'last_message_id': None,
        'rate_limit_per_user': 0, 'parent_id': None, 'flags': 0,
    }


def voice_channel(channel_id: int, guild_id: int, name: str, *, position: int = 0) -> dict[str, Any]:
    return {
        'id': str(channel_id), 'type': VOICE_CHANNEL, 'guild_id': str(guild_id), 'name': name, 'position': position,
        'permission_overwrites': [], 'nsfw': False, 'last_message_id': None, 'rate_limit_per_user': 0,
        'parent_id': None, 'flags': 0, 'bitrate': 64000, 'user_limit': 0, 'rtc_region': None,
        'video_quality_mode': 1,
    }


def dm_channel(channel_id: int, recipient: dict[str, Any]) -> dict[str, Any]:
    return {'id': str(channel_id), 'type': DM_CHANNEL, 'recipients': [recipient], 'last_message_id': None, 'flags': 0}


def emoji(key: str) -> dict[str, Any]:
    """'👍' -> unicode emoji; 'name:id' -> custom emoji."""
    name, _, emoji_id = key.partition(':')
    return {'id': emoji_id or None, 'name': name, 'animated': False}


def emoji_key(text: str) -> str:
    """Normalise what a test or discord.py's URL gives: '👍', 'name:id', 'a:name:id', '<:name:id>'."""
    text = text.strip('<>')
    parts = text.split(':')
    if len(parts) == 3:  # a:name:id, or :name:id
        parts = parts[1:]
    if len(parts) == 2 and parts[1].isdigit():
        return f'{parts[0]}:{parts[1]}'
    return text
