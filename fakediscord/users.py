"""The user side of the fake Discord: what a test (or the playground) does as a Discord user would,
slash commands, autocomplete, buttons, menus, modals, reactions and messages, each sent to the bot
through the gateway with the interaction's 3-second deadline.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from . import payloads as P
from .records import (
    AUTOCOMPLETE_RESULT,
    MODAL,
    FakeInteraction,
    StoredAttachment,
    StoredMessage,
    Upload,
)

log = logging.getLogger('fakediscord')


class UserSide:
    """``FakeDiscord``'s user side: ``slash``, ``autocomplete``, ``click``, ``select``, ``submit_modal``,
    ``react``, ``unreact``, ``say``."""

    # --- driving the bot as a user ----------------------------------------------

    def _interaction_base(self, type_: int, data: dict[str, Any], user_id: int | None,
                          channel_id: int | None) -> dict[str, Any]:
        user_id = self.user_id if user_id is None else user_id
        channel_id = self.channel_id if channel_id is None else channel_id
        guild_id = self._channel_guild(channel_id)
        payload: dict[str, Any] = {
            'id': str(self.snowflake()), 'application_id': str(self.application_id), 'type': type_,
            'token': 'itok-' + secrets.token_urlsafe(24), 'version': 1, 'data': data,
            'channel_id': str(channel_id), 'channel': self.channels[channel_id],
            'locale': 'en-US', 'app_permissions': str(P.ALL_PERMISSIONS), 'entitlements': [],
            'attachment_size_limit': 10 * 1024 * 1024,
        }
        if guild_id is not None:
            member = {**self._member(user_id), 'permissions': str(self._permissions(user_id))}
            payload.update(guild_id=str(guild_id), guild_locale='en-US', member=member, context=0,
                           guild={'id': str(guild_id), 'locale': 'en-US', 'features': []},
                           authorizing_integration_owners={'0': str(guild_id)})
        else:
            payload.update(user=self.user(user_id), context=1, authorizing_integration_owners={'0': '0'})
        return payload

    async def _send_interaction(self, payload: dict[str, Any]) -> FakeInteraction:
        interaction = FakeInteraction(self, payload, asyncio.get_running_loop().time())
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        await self.dispatch('INTERACTION_CREATE', payload)
        return interaction

    def _find_command(self, name: str) -> tuple[dict[str, Any] | None, int | None]:
        for scope in (self.guild_id, None):
            for command in self.commands.get(scope, []):
                if command['name'] == name and command.get('type', 1) == 1:
                    return command, scope
        return None, None

    def _store_file(self, channel_id: int, upload: Upload) -> StoredAttachment:
        attachment_id = self.snowflake()
        url = f'{self.base_url}/attachments/{channel_id}/{attachment_id}/{upload.filename}'
        attachment = StoredAttachment(attachment_id, upload.filename, upload.data, url, upload.content_type)
        self._files[attachment_id] = attachment
        return attachment

    def _command_data(self, name: str, options: dict[str, Any] | None, channel_id: int,
                      focused: str | None = None) -> dict[str, Any]:
        """``data`` of a slash/autocomplete interaction; 'group sub' names address subcommands.

        Option types come from the synced command; for commands never synced
        they are guessed from the Python values.
        """
        root, *path = name.split()
        command, scope = self._find_command(root)
        schema: list[dict[str, Any]] = command.get('options', []) if command else []
        resolved: dict[str, dict[str, Any]] = {}
        options_out: list[dict[str, Any]] = []
        top = options_out
        for sub in path:  # descend into subcommand groups / subcommands
            spec = next((o for o in schema if o['name'] == sub), None)
            entry = {'name': sub, 'type': spec['type'] if spec else P.SUB_COMMAND, 'options': []}
            top.append(entry)
            top = entry['options']
            schema = spec.get('options', []) if spec else []
        for key, value in (options or {}).items():
            spec = next((o for o in schema if o['name'] == key), None)
            kind = spec['type'] if spec else self._guess_type(value)
            entry: dict[str, Any] = {'name': key, 'type': kind}
            if key == focused:
                entry.update(value=str(value), focused=True)  # what the user has typed so far
            elif kind == P.ATTACHMENT:
                upload = value if isinstance(value, Upload) else Upload(*value)
                attachment = self._store_file(channel_id, upload)
                resolved.setdefault('attachments', {})[str(attachment.id)] = attachment.to_payload()
                entry['value'] = str(attachment.id)
            elif kind in (P.USER, P.MENTIONABLE):
                resolved.setdefault('users', {})[str(value)] = self.user(int(value))
                resolved.setdefault('members', {})[str(value)] = {
                    k: v for k, v in self._member(int(value)).items() if k != 'user'}
                entry['value'] = str(value)
            elif kind == P.CHANNEL:
                resolved.setdefault('channels', {})[str(value)] = {
                    **self.channels[int(value)], 'permissions': str(P.ALL_PERMISSIONS)}
                entry['value'] = str(value)
            else:
                entry['value'] = value
            top.append(entry)
        data: dict[str, Any] = {
            'id': command['id'] if command else str(self.snowflake()), 'name': root, 'type': 1,
            'options': options_out,
        }
        if resolved:
            data['resolved'] = resolved
        if scope is not None:
            data['guild_id'] = str(scope)
        return data

    @staticmethod
    def _guess_type(value: Any) -> int:
        if isinstance(value, (Upload, tuple)):
            return P.ATTACHMENT
        if isinstance(value, bool):
            return P.BOOLEAN
        if isinstance(value, int):
            return P.INTEGER
        if isinstance(value, float):
            return P.NUMBER
        return P.STRING

    async def slash(self, name: str, options: dict[str, Any] | None = None, *, user_id: int | None = None,
                    channel_id: int | None = None) -> FakeInteraction:
        """Run a slash command as a user. Attachment options take ``Upload(filename, bytes)``."""
        channel_id = self.channel_id if channel_id is None else channel_id
        data = self._command_data(name, options, channel_id)
        return await self._send_interaction(self._interaction_base(2, data, user_id, channel_id))

    async def autocomplete(self, name: str, focused_option: str, value: str, *,
                           options: dict[str, Any] | None = None, user_id: int | None = None,
                           channel_id: int | None = None, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Type ``value`` into ``focused_option`` of a command; returns the choices the bot offered."""
        channel_id = self.channel_id if channel_id is None else channel_id
        data = self._command_data(name, {**(options or {}), focused_option: value}, channel_id, focused_option)
        interaction = await self._send_interaction(self._interaction_base(4, data, user_id, channel_id))
        response = await interaction.wait_response(timeout)
        if response.type != AUTOCOMPLETE_RESULT:
            raise AssertionError(f'expected an autocomplete result (type 8), got type {response.type}')
        return response.choices

    async def click(self, message_id: int, custom_id: str, *, user_id: int | None = None,
                    component_type: int = 2, values: list[str] | None = None) -> FakeInteraction:
        """Press a button (or choose ``values`` in a select) on a stored message."""
        message = self.messages.get(message_id)
        if message is None or message.deleted:
            raise KeyError(f'fakediscord: no message {message_id}')
        if custom_id not in message.custom_ids:
            log.warning('message %s has no component %r (has %s)', message_id, custom_id, message.custom_ids)
        data: dict[str, Any] = {'custom_id': custom_id, 'component_type': component_type}
        if values is not None:
            data['values'] = values
        payload = self._interaction_base(3, data, user_id, message.channel_id)
        payload['message'] = message.to_payload()
        return await self._send_interaction(payload)

    async def select(self, message_id: int, custom_id: str, values: list[str], *,
                     user_id: int | None = None) -> FakeInteraction:
        """Choose options in a string select menu."""
        return await self.click(message_id, custom_id, user_id=user_id, component_type=3, values=values)

    async def submit_modal(self, opened_by: FakeInteraction, fields: dict[str, str | list[str]], *,
                           user_id: int | None = None) -> FakeInteraction:
        """Fill in and submit the modal the bot answered ``opened_by`` with (text values by custom_id).

        The submission mirrors the modal's layout (action rows or labels), as Discord's does.
        """
        response = opened_by.response
        if response is None or response.type != MODAL:
            raise AssertionError(f'interaction {opened_by.id} was not answered with a modal')
        seen: list[str] = []

        def fill(component: dict[str, Any]) -> dict[str, Any]:
            kind, custom_id = component['type'], component.get('custom_id')
            if kind == 1:  # action row
                return {'type': 1, 'components': [fill(c) for c in component['components']]}
            if kind == 18:  # label
                return {'type': 18, 'id': component.get('id'), 'component': fill(component['component'])}
            if custom_id is None:
                return {'type': kind, 'id': component.get('id')}
            seen.append(custom_id)
            if kind == 4:  # text input
                return {'type': 4, 'custom_id': custom_id, 'value': fields.get(custom_id, component.get('value', ''))}
            return {'type': kind, 'custom_id': custom_id, 'values': list(fields.get(custom_id, []))}

        data = {'custom_id': response.data['custom_id'],
                'components': [fill(c) for c in response.data.get('components', [])]}
        if unknown := set(fields) - set(seen):
            raise KeyError(f'fakediscord: the modal has no field {sorted(unknown)} (has {seen})')
        channel_id = int(opened_by.payload['channel_id'])
        payload = self._interaction_base(5, data, user_id, channel_id)
        if 'message' in opened_by.payload:
            payload['message'] = opened_by.payload['message']
        return await self._send_interaction(payload)

    def _reaction_event(self, message_id: int, key: str, user_id: int, *, add: bool) -> tuple[dict[str, Any], int]:
        message = self.messages.get(message_id)
        channel_id = message.channel_id if message else self.channel_id
        guild_id = self._channel_guild(channel_id)
        data: dict[str, Any] = {
            'user_id': str(user_id), 'channel_id': str(channel_id), 'message_id': str(message_id),
            'emoji': P.emoji(key), 'burst': False, 'type': 0,
        }
        if guild_id is not None:
            data['guild_id'] = str(guild_id)
            if add:
                data['member'] = self._member(user_id)
        if add:
            data['burst_colors'] = []
            if message is not None:
                data['message_author_id'] = str(message.author_id)
        intent = P.GUILD_MESSAGE_REACTIONS if guild_id is not None else P.DIRECT_MESSAGE_REACTIONS
        return data, intent

    async def _set_reaction(self, message_id: int, emoji: str, user_id: int, *, add: bool) -> int:
        key = P.emoji_key(emoji)
        message = self.messages.get(message_id)
        if message is not None:
            users = message.reactions.setdefault(key, [])
            if add and user_id not in users:
                users.append(user_id)
            elif not add and user_id in users:
                users.remove(user_id)
        self.changes.notify()
        data, intent = self._reaction_event(message_id, key, user_id, add=add)
        event = 'MESSAGE_REACTION_ADD' if add else 'MESSAGE_REACTION_REMOVE'
        return await self.dispatch(event, data, intent=intent)

    async def react(self, message_id: int, emoji: str, *, user_id: int | None = None) -> int:
        """A user adds a reaction (raw MESSAGE_REACTION_ADD; the message need not be cached by the bot)."""
        return await self._set_reaction(message_id, emoji, self.user_id if user_id is None else user_id, add=True)

    async def unreact(self, message_id: int, emoji: str, *, user_id: int | None = None) -> int:
        """A user removes their reaction (MESSAGE_REACTION_REMOVE)."""
        return await self._set_reaction(message_id, emoji, self.user_id if user_id is None else user_id, add=False)

    async def say(self, content: str, *, user_id: int | None = None, channel_id: int | None = None) -> StoredMessage:
        """A user posts a message (MESSAGE_CREATE; content blanked without the message_content intent)."""
        user_id = self.user_id if user_id is None else user_id
        channel_id = self.channel_id if channel_id is None else channel_id
        message = StoredMessage(id=self.snowflake(), channel_id=channel_id, guild_id=self._channel_guild(channel_id),
                                author=self.user(user_id), content=content)
        self.messages[message.id] = message
        self.changes.notify()
        await self._dispatch_message('MESSAGE_CREATE', message)
        return message

    async def _dispatch_message(self, event: str, message: StoredMessage) -> None:
        """MESSAGE_CREATE/UPDATE as Discord sends them: not for ephemeral messages, only with the intent."""
        if message.ephemeral or not self._sessions:
            return
        data = message.to_payload()
        if message.guild_id is not None and message.webhook_id is None:
            data['member'] = {k: v for k, v in self._member(message.author_id).items() if k != 'user'}
        intent = P.GUILD_MESSAGES if message.guild_id is not None else P.DIRECT_MESSAGES
        for session in list(self._sessions.values()):
            if not session.intents & intent:
                continue
            mentioned = f'<@{self.bot_id}>' in message.content
            if not session.intents & P.MESSAGE_CONTENT and message.author_id != self.bot_id and not mentioned \
                    and message.guild_id is not None:
                data = {**data, 'content': '', 'embeds': [], 'attachments': [], 'components': []}
            await self._send_event(session, event, data)

    async def _dispatch_delete(self, message: StoredMessage) -> None:
        if message.ephemeral or not self._sessions:
            return
        data = {'id': str(message.id), 'channel_id': str(message.channel_id)}
        if message.guild_id is not None:
            data['guild_id'] = str(message.guild_id)
        intent = P.GUILD_MESSAGES if message.guild_id is not None else P.DIRECT_MESSAGES
        await self.dispatch('MESSAGE_DELETE', data, intent=intent)
