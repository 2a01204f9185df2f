"""The fake Discord's REST API (``/api/v10``): identity, command sync, channel messages, reactions,
attachments, guilds, interaction callbacks and their webhooks. Every request is recorded
(``fake.calls``); an unknown route answers a Discord-style 404 and lands in ``fake.unknown_calls``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import payloads as P
from .records import (
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EPHEMERAL,
    LOADING,
    UPDATE_MESSAGE,
    CallbackRecord,
    FakeInteraction,
    RestCall,
    StoredAttachment,
    StoredMessage,
    Upload,
)

log = logging.getLogger('fakediscord')

API_PREFIX = '/api/v10'
GATEWAY_PATH = '/gateway-ws/'
# Message flags a bot may set when sending (SUPPRESS_EMBEDS, EPHEMERAL, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2).
_SENDABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)

_BODY = web.RequestKey('fakediscord_body', object)  # parsed JSON / payload_json
_UPLOADS = web.RequestKey('fakediscord_uploads', list)  # multipart files[N]
_CALL = web.RequestKey('fakediscord_call', RestCall)


def _json(data: Any, status: int = 200) -> web.Response:
    # exactly 'application/json': discord.py compares the header verbatim, a charset breaks it
    return web.Response(body=json.dumps(data).encode(), status=status, content_type='application/json')


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json({'message': message, 'code': code}, status=status)


def _no_content() -> web.Response:
    return web.Response(status=204)


@dataclass
class _Upload:
    index: int  # N of the multipart field files[N]
    filename: str
    data: bytes
    content_type: str | None

class Rest:
    """``FakeDiscord``'s REST half: the routes and their handlers."""

    # --- REST: plumbing ---------------------------------------------------------

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        body, uploads = await self._parse_body(request)
        call = RestCall(request.method, request.path[len(API_PREFIX):], dict(request.query), body,
                        [(u.filename, u.data) for u in uploads], at=asyncio.get_running_loop().time())
        request[_BODY], request[_UPLOADS], request[_CALL] = body, uploads, call
        self.calls.append(call)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # e.g. 405 from the router
            response = _error(exc.status, f'{exc.status}: {exc.reason}')
        except Exception:
            log.exception('fake Discord failed on %s %s', request.method, request.path)
            response = _error(500, '500: Internal Server Error (fakediscord bug)')
        call.status = response.status
        self.changes.notify()
        return response

    @staticmethod
    async def _parse_body(request: web.Request) -> tuple[Any, list[_Upload]]:
        """JSON body, or multipart ``payload_json`` + ``files[N]`` parts (how discord.py uploads files)."""
        if not request.body_exists:
            return None, []
        if request.content_type.startswith('multipart/'):
            body, uploads = None, []
            reader = await request.multipart()
            async for part in reader:
                if part.name == 'payload_json':
                    body = json.loads(await part.text())
                elif part.name and (match := re.fullmatch(r'files\[(\d+)\]', part.name)):
                    data = bytes(await part.read())
                    uploads.append(_Upload(int(match.group(1)), part.filename or f'file{match.group(1)}',
                                           data, part.headers.get('Content-Type')))
                else:
                    await part.read()
            return body, uploads
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        routes = [
            ('GET', '/gateway', self._get_gateway),
            ('GET', '/gateway/bot', self._get_gateway_bot),
            ('GET', '/users/@me', self._get_me),
            ('GET', '/users/{user_id:\\d+}', self._get_user),
            ('POST', '/users/@me/channels', self._create_dm),
            ('GET', '/oauth2/applications/@me', self._get_application),
            ('GET', '/applications/@me', self._get_application),
            ('GET', '/applications/{app_id}/commands', self._get_commands),
            ('PUT', '/applications/{app_id}/commands', self._put_commands),
            ('POST', '/applications/{app_id}/commands', self._post_command),
            ('GET', '/applications/{app_id}/guilds/{guild_id}/commands', self._get_commands),
            ('PUT', '/applications/{app_id}/guilds/{guild_id}/commands', self._put_commands),
            ('POST', '/applications/{app_id}/guilds/{guild_id}/commands', self._post_command),
            ('POST', '/interactions/{interaction_id}/{token}/callback', self._interaction_callback),
            ('POST', '/webhooks/{app_id}/{token}', self._webhook_post),
            ('GET', '/webhooks/{app_id}/{token}/messages/{message_id}', self._webhook_get),
            ('PATCH', '/webhooks/{app_id}/{token}/messages/{message_id}', self._webhook_patch),
            ('DELETE', '/webhooks/{app_id}/{token}/messages/{message_id}', self._webhook_delete),
            ('GET', '/channels/{channel_id}', self._get_channel),
            ('POST', '/channels/{channel_id}/typing', self._typing),
            ('GET', '/channels/{channel_id}/messages', self._get_messages),
            ('POST', '/channels/{channel_id}/messages', self._post_message),
            ('GET', '/channels/{channel_id}/messages/{message_id}', self._get_message),
            ('PATCH', '/channels/{channel_id}/messages/{message_id}', self._patch_message),
            ('DELETE', '/channels/{channel_id}/messages/{message_id}', self._delete_message),
            ('GET', '/channels/{channel_id}/messages/{message_id}/reactions/{emoji}', self._get_reactions),
            ('PUT', '/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me', self._put_reaction),
            ('DELETE', '/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user}', self._delete_reaction),
            ('GET', '/guilds/{guild_id}', self._get_guild),
            ('GET', '/guilds/{guild_id}/channels', self._get_guild_channels),
            ('GET', '/guilds/{guild_id}/members/{user_id}', self._get_member),
        ]
        for method, path, handler in routes:
            router.add_route(method, api + path, handler)
        router.add_get(GATEWAY_PATH, self._gateway)
        router.add_get('/attachments/{channel_id}/{attachment_id}/{filename}', self._get_attachment)
        router.add_route('*', '/{tail:.*}', self._unknown)

    async def _unknown(self, request: web.Request) -> web.Response:
        call = request.get(_CALL)
        log.warning('fake Discord has no route for %s %s', request.method, request.path)
        if call is not None:
            self.unknown_calls.append(call)
        return _error(404, '404: Not Found')

    def _bot_auth(self, request: web.Request) -> web.Response | None:
        if not request.headers.get('Authorization', '').startswith('Bot '):
            return _error(401, '401: Unauthorized')
        return None

    # --- REST: identity, gateway, commands --------------------------------------

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({'url': self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json({
            'url': self.gateway_url, 'shards': self.recommended_shards,
            'session_start_limit': {'total': 1000, 'remaining': 1000, 'reset_after': 0, 'max_concurrency': 1},
        })

    async def _get_me(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json(self._bot_user())

    def _known_user(self, request: web.Request) -> int | None:
        """The path's user id, when that user is the bot or one of the world's."""
        user_id = int(request.match_info['user_id'])
        return user_id if user_id == self.bot_id or user_id in self.users else None

    async def _get_user(self, request: web.Request) -> web.Response:
        user_id = self._known_user(request)
        return _error(404, 'Unknown User', 10013) if user_id is None else _json(self.user(user_id))

    async def _create_dm(self, request: web.Request) -> web.Response:
        return _json(self.channels[self.dm_channel_id(int(request[_BODY]['recipient_id']))])

    async def _get_application(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json({
            'id': str(self.application_id), 'name': self.bot_name, 'description': 'fake application',
            'icon': None, 'bot_public': True, 'bot_require_code_grant': False, 'owner': self.user(self.owner_id),
            'team': None, 'verify_key': '0' * 64, 'flags': 0, 'summary': '', 'rpc_origins': [],
            'interactions_endpoint_url': None, 'bot': self._bot_user(),
        })

    def _scope(self, request: web.Request) -> int | None:
        guild_id = request.match_info.get('guild_id')
        return int(guild_id) if guild_id else None

    def _store_command(self, scope: int | None, spec: dict[str, Any], existing: list[dict[str, Any]]) -> dict[str, Any]:
        """Give a command its id (stable per name and type, as Discord keeps them)."""
        same = next((c for c in existing if c['name'] == spec['name'] and c.get('type', 1) == spec.get('type', 1)),
                    None)
        command = {
            'type': 1, 'options': [], 'default_member_permissions': None, 'nsfw': False, 'description': '',
            **spec,
            'id': same['id'] if same else str(self.snowflake()), 'application_id': str(self.application_id),
            'version': str(self.snowflake()),
        }
        if scope is not None:
            command['guild_id'] = str(scope)
        return command

    async def _get_commands(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json(self.commands.get(self._scope(request), []))

    async def _put_commands(self, request: web.Request) -> web.Response:
        if denied := self._bot_auth(request):
            return denied
        scope = self._scope(request)
        existing = self.commands.get(scope, [])
        self.commands[scope] = [self._store_command(scope, spec, existing) for spec in request[_BODY] or []]
        self.command_syncs.append((scope, self.commands[scope]))
        return _json(self.commands[scope])

    async def _post_command(self, request: web.Request) -> web.Response:
        if denied := self._bot_auth(request):
            return denied
        scope = self._scope(request)
        existing = self.commands.setdefault(scope, [])
        command = self._store_command(scope, request[_BODY], existing)
        self.commands[scope] = [c for c in existing if c['id'] != command['id']] + [command]
        return _json(command)

    # --- REST: messages ---------------------------------------------------------

    def _attachments(self, channel_id: int, body: dict[str, Any], uploads: list[_Upload],
                     existing: list[StoredAttachment]) -> list[StoredAttachment]:
        """Attachments after a create/edit: kept ones (by id) plus new uploads (files[N] <-> id N)."""
        by_index = {u.index: u for u in uploads}
        specs = body.get('attachments')
        if specs is None:  # not mentioned: keep what is there, add any uploads
            specs = [{'id': a.id} for a in existing] + [{'id': u.index} for u in uploads]
        kept = {a.id: a for a in existing}
        result = []
        for spec in specs:
            spec_id = int(spec['id'])
            if spec_id in kept:
                result.append(kept[spec_id])
            elif spec_id in by_index:
                upload = by_index[spec_id]
                stored = self._store_file(channel_id, Upload(spec.get('filename') or upload.filename,
                                                             upload.data, upload.content_type))
                stored.description = spec.get('description')
                result.append(stored)
        return result

    def _new_message(self, channel_id: int, body: dict[str, Any], uploads: list[_Upload], *,
                     flags: int = 0, interaction: FakeInteraction | None = None, type_: int = 0) -> StoredMessage:
        message = StoredMessage(
            id=self.snowflake(), channel_id=channel_id, guild_id=self._channel_guild(channel_id),
            author=self._bot_user(), type=type_,
            flags=flags | (body.get('flags', 0) & _SENDABLE_FLAGS),
        )
        if interaction is not None:
            message.webhook_id = message.application_id = self.application_id
            message.interaction_id = interaction.id
        if body.get('message_reference'):
            message.message_reference = body['message_reference']
            message.type = 19
        self._apply(message, body, uploads, edit=False)
        self.messages[message.id] = message
        return message

    def _apply(self, message: StoredMessage, body: dict[str, Any], uploads: list[_Upload], *, edit: bool) -> None:
        if 'content' in body:
            message.content = body['content'] or ''
        if 'embeds' in body:
            message.embeds = body['embeds'] or []
        elif 'embed' in body:
            message.embeds = [body['embed']] if body['embed'] else []
        if 'components' in body:
            message.components = body['components'] or []
        message.attachments = self._attachments(message.channel_id, body, uploads, message.attachments)
        if edit:
            if 'flags' in body and body['flags'] is not None:
                message.flags = (message.flags & ~_SENDABLE_FLAGS) | (body['flags'] & _SENDABLE_FLAGS) \
                    | (message.flags & EPHEMERAL)  # ephemerality can't change
            message.edited_at = dt.datetime.now(dt.timezone.utc)
            message.edits += 1

    @staticmethod
    def _is_empty(body: dict[str, Any], uploads: list[_Upload]) -> bool:
        return not (body.get('content') or body.get('embeds') or body.get('components') or uploads
                    or body.get('sticker_ids') or body.get('poll'))

    def _message_or_404(self, request: web.Request) -> StoredMessage | web.Response:
        channel_id = int(request.match_info['channel_id'])
        if channel_id not in self.channels:
            return _error(404, 'Unknown Channel', 10003)
        message = self.messages.get(int(request.match_info['message_id']))
        if message is None or message.deleted or message.channel_id != channel_id or message.ephemeral:
            return _error(404, 'Unknown Message', 10008)
        return message

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(int(request.match_info['channel_id']))
        return _json(channel) if channel else _error(404, 'Unknown Channel', 10003)

    async def _typing(self, request: web.Request) -> web.Response:
        return _no_content()

    async def _get_messages(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info['channel_id'])
        if channel_id not in self.channels:
            return _error(404, 'Unknown Channel', 10003)
        messages = [m for m in self.messages_in(channel_id) if not m.ephemeral]
        if 'before' in request.query:
            messages = [m for m in messages if m.id < int(request.query['before'])]
        if 'after' in request.query:
            messages = [m for m in messages if m.id > int(request.query['after'])]
            limit = int(request.query.get('limit', 50))
            return _json([m.to_payload() for m in messages[:limit]][::-1])
        limit = int(request.query.get('limit', 50))
        return _json([m.to_payload() for m in reversed(messages)][:limit])

    async def _post_message(self, request: web.Request) -> web.Response:
        if denied := self._bot_auth(request):
            return denied
        channel_id = int(request.match_info['channel_id'])
        if channel_id not in self.channels:
            return _error(404, 'Unknown Channel', 10003)
        body, uploads = request[_BODY] or {}, request[_UPLOADS]
        if self._is_empty(body, uploads):
            return _error(400, 'Cannot send an empty message', 50006)
        message = self._new_message(channel_id, body, uploads)
        await self._dispatch_message('MESSAGE_CREATE', message)
        return _json(message.to_payload())

    async def _get_message(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        return found if isinstance(found, web.Response) else _json(found.to_payload())

    async def _patch_message(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        if found.author_id != self.bot_id:
            return _error(403, 'Cannot edit a message authored by another user', 50005)
        return await self._edited(found, request)

    async def _delete_message(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        return found if isinstance(found, web.Response) else await self._deleted(found)

    async def _edited(self, message, request: web.Request, loaded: bool = False) -> web.Response:
        """Apply an edit's body and files, tell the gateway, answer with the message (``loaded``:
        an interaction's "thinking…" is over)."""
        self._apply(message, request[_BODY] or {}, request[_UPLOADS], edit=True)
        if loaded:
            message.flags &= ~LOADING
        await self._dispatch_message('MESSAGE_UPDATE', message)
        return _json(message.to_payload())

    async def _deleted(self, message) -> web.Response:
        message.deleted = True
        await self._dispatch_delete(message)
        return _no_content()

    async def _get_reactions(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        users = found.reactions.get(P.emoji_key(request.match_info['emoji']), [])
        return _json([self.user(uid) for uid in users])

    async def _put_reaction(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        key = P.emoji_key(request.match_info['emoji'])
        self.bot_reactions.append((found.id, key))
        await self._set_reaction(found.id, key, self.bot_id, add=True)  # Discord echoes the bot's own reaction
        return _no_content()

    async def _delete_reaction(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        who = request.match_info['user']
        user_id = self.bot_id if who == '@me' else int(who)
        await self._set_reaction(found.id, request.match_info['emoji'], user_id, add=False)
        return _no_content()

    async def _get_attachment(self, request: web.Request) -> web.Response:
        attachment = self._files.get(int(request.match_info['attachment_id']))
        if attachment is None or attachment.filename != request.match_info['filename']:
            return web.Response(status=404, text='Not Found')
        return web.Response(body=attachment.data, content_type=attachment.content_type or 'application/octet-stream')

    # --- REST: guilds -----------------------------------------------------------

    async def _get_guild(self, request: web.Request) -> web.Response:
        if int(request.match_info['guild_id']) != self.guild_id:
            return _error(404, 'Unknown Guild', 10004)
        return _json(self._guild())

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        if int(request.match_info['guild_id']) != self.guild_id:
            return _error(404, 'Unknown Guild', 10004)
        return _json([c for c in self.channels.values() if c.get('guild_id') == str(self.guild_id)])

    async def _get_member(self, request: web.Request) -> web.Response:
        user_id = self._known_user(request)
        return _error(404, 'Unknown Member', 10007) if user_id is None else _json(self._member(user_id))

    # --- REST: interactions and their webhooks ----------------------------------

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self._by_token.get(request.match_info['token'])
        if interaction is None or str(interaction.id) != request.match_info['interaction_id']:
            return _error(404, 'Unknown interaction', 10062)
        body, uploads = request[_BODY] or {}, request[_UPLOADS]
        kind, data = body.get('type'), body.get('data') or {}
        elapsed = asyncio.get_running_loop().time() - interaction.dispatched_at
        if any(c.accepted for c in interaction.callbacks):
            return _error(400, 'Interaction has already been acknowledged.', 40060)
        record = CallbackRecord(kind, data, [(u.filename, u.data) for u in uploads], elapsed,
                                accepted=elapsed <= self.response_deadline)
        interaction.callbacks.append(record)
        if not record.accepted:
            log.warning('interaction %s answered after %.2fs (deadline %gs): Discord says Unknown interaction',
                        interaction.id, elapsed, self.response_deadline)
            return _error(404, 'Unknown interaction', 10062)

        channel_id = int(interaction.payload['channel_id'])
        resource: dict[str, Any] = {'type': kind}
        if kind == CHANNEL_MESSAGE:
            if self._is_empty(data, uploads):
                interaction.callbacks.remove(record)
                return _error(400, 'Cannot send an empty message', 50006)
            interaction.original = self._new_message(channel_id, data, uploads, interaction=interaction, type_=20)
            await self._dispatch_message('MESSAGE_CREATE', interaction.original)
        elif kind == DEFERRED_CHANNEL_MESSAGE:  # "Bot is thinking..." until the first followup or edit
            interaction.original = self._new_message(channel_id, {}, [], interaction=interaction, type_=20,
                                                     flags=LOADING | (data.get('flags', 0) & EPHEMERAL))
            await self._dispatch_message('MESSAGE_CREATE', interaction.original)
        elif kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and 'message' in interaction.payload:
            interaction.original = self.messages.get(int(interaction.payload['message']['id']))
            if kind == UPDATE_MESSAGE and interaction.original is not None:
                self._apply(interaction.original, data, uploads, edit=True)
                await self._dispatch_message('MESSAGE_UPDATE', interaction.original)
        if interaction.original is not None and kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, UPDATE_MESSAGE):
            resource['message'] = interaction.original.to_payload()
        original = interaction.original
        return _json({
            'interaction': {
                'id': str(interaction.id), 'type': interaction.type,
                'response_message_id': str(original.id) if original else None,
                'response_message_loading': kind == DEFERRED_CHANNEL_MESSAGE,
                'response_message_ephemeral': bool(original and original.ephemeral),
            },
            'resource': resource,
        })

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction | web.Response:
        interaction = self._by_token.get(request.match_info['token'])
        if interaction is None or request.match_info['app_id'] != str(self.application_id):
            return _error(404, 'Unknown Webhook', 10015)
        if not any(c.accepted for c in interaction.callbacks):  # no initial response yet
            return _error(404, 'Unknown Webhook', 10015)
        return interaction

    def _webhook_message(self, interaction: FakeInteraction, message_id: str) -> StoredMessage | web.Response:
        if message_id == '@original':
            message = interaction.original
        else:
            message = self.messages.get(int(message_id))
            if message is not None and message.interaction_id != interaction.id:
                message = None
        if message is None or message.deleted:
            return _error(404, 'Unknown Message', 10008)
        return message

    async def _webhook_post(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        if isinstance(interaction, web.Response):
            return interaction
        body, uploads = request[_BODY] or {}, request[_UPLOADS]
        if self._is_empty(body, uploads):
            return _error(400, 'Cannot send an empty message', 50006)
        original = interaction.original
        if original is not None and not original.deleted and original.loading and not interaction.followups:
            # Discord turns the first followup after a defer into the deferred message;
            # its ephemerality was fixed by defer(ephemeral=...)
            self._apply(original, {k: v for k, v in body.items() if k != 'flags'}, uploads, edit=False)
            original.flags &= ~LOADING
            message = original
            await self._dispatch_message('MESSAGE_UPDATE', message)
        else:
            message = self._new_message(int(interaction.payload['channel_id']), body, uploads,
                                        interaction=interaction)
            await self._dispatch_message('MESSAGE_CREATE', message)
        interaction.followups.append(message)
        interaction.followup_elapsed.append(asyncio.get_running_loop().time() - interaction.dispatched_at)
        return _json(message.to_payload())

    async def _webhook_get(self, request: web.Request) -> web.Response:
        message = self._webhook_target(request)
        return message if isinstance(message, web.Response) else _json(message.to_payload())

    def _webhook_target(self, request: web.Request):
        """The message a webhook path names (its interaction's), or the error response."""
        interaction = self._webhook_interaction(request)
        if isinstance(interaction, web.Response):
            return interaction
        return self._webhook_message(interaction, request.match_info['message_id'])

    async def _webhook_patch(self, request: web.Request) -> web.Response:
        message = self._webhook_target(request)
        return message if isinstance(message, web.Response) else await self._edited(message, request, loaded=True)

    async def _webhook_delete(self, request: web.Request) -> web.Response:
        message = self._webhook_target(request)
        return message if isinstance(message, web.Response) else await self._deleted(message)
