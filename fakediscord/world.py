"""The test world of the fake Discord: its users, the guild (members, roles, permissions), its
channels and DMs, who sits in which voice channel, and the messages stored there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import payloads as P
from .records import StoredMessage

log = logging.getLogger('fakediscord')


class World:
    """``FakeDiscord``'s world: users, the guild and its channels, voice members, stored messages."""

    # --- the test world ---------------------------------------------------------

    def user(self, user_id: int | None = None, name: str | None = None) -> dict[str, Any]:
        """The user payload for ``user_id`` (default: the tester), creating the user if new."""
        user_id = self.user_id if user_id is None else user_id
        if user_id == self.bot_id:
            return self._bot_user()
        if user_id not in self.users:
            self.users[user_id] = P.user(user_id, name or f'user{user_id}')
        return self.users[user_id]

    def issued_ids(self) -> set[int]:
        """Every Discord id this fake knows: the snowflakes it issued and the user ids tests chose."""
        return {*self.snowflake.issued, *self.users, *self.dm_channels, *self.channels, *self.messages}

    def dm_channel_id(self, user_id: int | None = None) -> int:
        """The DM channel between the bot and a user (created on first use), e.g. for slash(channel_id=...)."""
        user_id = self.user_id if user_id is None else user_id
        if user_id not in self.dm_channels:
            channel_id = self.snowflake()
            self.dm_channels[user_id] = channel_id
            self.channels[channel_id] = P.dm_channel(channel_id, self.user(user_id))
        return self.dm_channels[user_id]

    def _bot_user(self) -> dict[str, Any]:
        return P.bot_user(self.bot_id, self.bot_name)

    def _member(self, user_id: int) -> dict[str, Any]:
        roles = [self.bot_role_id] if user_id == self.bot_id else []
        return P.member(self.user(user_id), self.started_at, roles=roles)

    def _permissions(self, user_id: int) -> int:
        if user_id in (self.owner_id, self.bot_id):
            return P.ALL_PERMISSIONS
        return P.EVERYONE_PERMISSIONS

    def _guild(self) -> dict[str, Any]:
        return {
            'id': str(self.guild_id), 'name': self.guild_name, 'icon': None, 'splash': None,
            'discovery_splash': None, 'banner': None, 'description': None, 'owner_id': str(self.owner_id),
            'afk_channel_id': None, 'afk_timeout': 300, 'verification_level': 0,
            'default_message_notifications': 0, 'explicit_content_filter': 0, 'mfa_level': 0, 'nsfw_level': 0,
            'features': [], 'emojis': [], 'stickers': [], 'system_channel_id': None, 'system_channel_flags': 0,
            'rules_channel_id': None, 'public_updates_channel_id': None, 'vanity_url_code': None,
            'premium_tier': 0, 'premium_subscription_count': 0, 'preferred_locale': 'en-US',
            'premium_progress_bar_enabled': False,
            'roles': [
                P.role(self.everyone_role_id, '@everyone', P.EVERYONE_PERMISSIONS),
                P.role(self.bot_role_id, self.bot_name, self.bot_permissions, position=1, managed=True),
            ],
        }

    def _guild_create(self) -> dict[str, Any]:
        members = [self._member(uid) for uid in (self.bot_id, *self.users)]
        return {
            **self._guild(), 'joined_at': P.iso(self.started_at), 'large': False, 'unavailable': False,
            'member_count': len(members), 'members': members, 'voice_states': self.voice.guild_voice_states(),
            'presences': [],
            'channels': [c for c in self.channels.values() if c.get('guild_id') == str(self.guild_id)],
            'threads': [], 'stage_instances': [], 'guild_scheduled_events': [], 'soundboard_sounds': [],
        }

    # --- voice ------------------------------------------------------------------

    async def join_voice(self, channel_id: int | None = None, user_id: int | None = None) -> None:
        """A user (default: the tester) joins a voice channel (default: the first) as a listening DAVE member."""
        await self.voice.join(self.voice_channel_ids[0] if channel_id is None else channel_id,
                              self.user_id if user_id is None else user_id)

    async def leave_voice(self, user_id: int | None = None) -> None:
        await self.voice.leave(self.user_id if user_id is None else user_id)

    async def set_bot_permissions(self, permissions: int) -> None:
        """Give the bot's role these permissions (GUILD_ROLE_UPDATE), e.g. without CONNECT or SPEAK."""
        self.bot_permissions = permissions
        role = P.role(self.bot_role_id, self.bot_name, permissions, position=1, managed=True)
        await self.dispatch('GUILD_ROLE_UPDATE', {'guild_id': str(self.guild_id), 'role': role})

    def _channel_guild(self, channel_id: int) -> int | None:
        guild = self.channels[channel_id].get('guild_id')
        return int(guild) if guild else None

    def messages_in(self, channel_id: int | None = None, *, include_deleted: bool = False) -> list[StoredMessage]:
        """Messages of a channel (default: the test channel), oldest first."""
        channel_id = self.channel_id if channel_id is None else channel_id
        return [m for m in self.messages.values()
                if m.channel_id == channel_id and (include_deleted or not m.deleted)]

    async def wait_message(self, predicate: Callable[[StoredMessage], bool] = lambda m: True, *,
                           after: int = 0, timeout: float = 5.0) -> StoredMessage:
        """Wait for a stored message (id > ``after``) matching ``predicate``."""
        return await self.changes.wait_for(
            lambda: next((m for m in self.messages.values() if m.id > after and predicate(m)), None),
            timeout, 'matching message',
        )
