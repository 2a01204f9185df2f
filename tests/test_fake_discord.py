"""The fake Discord, proven with a minimal discord.py bot defined here (not the product bot)."""

from __future__ import annotations

import asyncio
import hashlib
import io

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from fakediscord import FakeDiscord, Upload

MIDI = b'MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0' + bytes(range(256))
STYLES = ['bach', 'baroque', 'doom', 'zelda']


class LikeView(discord.ui.View):
    """Persistent: survives restarts because the custom_id is fixed and timeout is None."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label='Like', custom_id='mini:like')
    async def like(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message(f'liked by {interaction.user.id}', ephemeral=True)


class MiniBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        super().__init__(command_prefix='!', intents=discord.Intents.default())
        self.guild = discord.Object(guild_id)
        self.raw_reactions: asyncio.Queue[tuple[str, discord.RawReactionActionEvent]] = asyncio.Queue()

    async def setup_hook(self) -> None:
        self.add_view(LikeView())
        self.tree.add_command(compose)
        self.tree.add_command(inspect)
        self.tree.add_command(panel)
        self.tree.add_command(slow)
        self.tree.add_command(rename)
        self.tree.add_command(render)
        self.tree.copy_global_to(guild=self.guild)
        await self.tree.sync(guild=self.guild)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.raw_reactions.put(('add', payload))

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self.raw_reactions.put(('remove', payload))


@app_commands.command()
@app_commands.describe(style='Composer style', bars='Length in bars')
async def compose(interaction: discord.Interaction, style: str, bars: int = 8) -> None:
    """Compose a piece."""
    await interaction.response.defer(thinking=True)
    await asyncio.sleep(0.1)  # "generating"
    message = await interaction.followup.send(f'{style}, {bars} bars', file=discord.File(io.BytesIO(MIDI), 'piece.mid'),
                                              wait=True)
    await message.add_reaction('👍')


@compose.autocomplete('style')
async def style_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=s.title(), value=s) for s in STYLES if s.startswith(current.lower())]


@app_commands.command()
async def inspect(interaction: discord.Interaction, midi: discord.Attachment) -> None:
    """Read an uploaded file back."""
    data = await midi.read()
    await interaction.response.send_message(f'{midi.filename} {hashlib.sha256(data).hexdigest()}',
                                            file=discord.File(io.BytesIO(data[::-1]), 'reversed.mid'))


@app_commands.command()
async def panel(interaction: discord.Interaction) -> None:
    """Post a message with a persistent button."""
    await interaction.response.send_message('rate me', view=LikeView())


@app_commands.command()
async def slow(interaction: discord.Interaction) -> None:
    """Answer too late (the test shrinks the 3 s deadline)."""
    await asyncio.sleep(0.3)
    try:
        await interaction.response.send_message('late')
    except discord.NotFound as exc:
        interaction.client.late_error = exc


@app_commands.command()
async def render(interaction: discord.Interaction) -> None:
    """Defer, then fill the response by editing it (twice)."""
    await interaction.response.defer(thinking=True, ephemeral=True)
    await interaction.edit_original_response(content='v1', attachments=[discord.File(io.BytesIO(MIDI), 'v1.mid')])
    message = await interaction.original_response()
    await message.edit(content='v2')  # attachments not mentioned: kept


class RenameModal(discord.ui.Modal, title='Name your piece'):
    name = discord.ui.TextInput(label='Name', custom_id='mini:name')

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f'named {self.name.value}')


@app_commands.command()
async def rename(interaction: discord.Interaction) -> None:
    """Open a modal."""
    await interaction.response.send_modal(RenameModal())


@pytest.fixture
async def fake():
    async with FakeDiscord() as fake:
        yield fake


async def next_reaction(bot: MiniBot, timeout: float = 3.0) -> tuple[str, discord.RawReactionActionEvent]:
    return await asyncio.wait_for(bot.raw_reactions.get(), timeout)


async def test_bot_connects_and_syncs_commands(fake):
    async with fake.running(MiniBot(fake.guild_id)) as bot:
        assert bot.is_ready() and bot.user.id == fake.bot_id
        assert bot.get_guild(fake.guild_id).get_channel(fake.channel_id).name == 'general'
        assert {c['name'] for c in fake.commands[fake.guild_id]} == {'compose', 'inspect', 'panel', 'slow', 'rename', 'render'}
        assert fake.identify_count == 1
        assert fake.gateway_connections[0]['compress'] == 'zlib-stream'  # served compressed, as asked
        paths = [c.path for c in fake.calls]
        assert '/users/@me' in paths and '/oauth2/applications/@me' in paths
    assert fake.unknown_calls == []


async def test_slash_defers_then_sends_file(fake):
    async with fake.running(MiniBot(fake.guild_id)):
        interaction = await fake.slash('compose', {'style': 'zelda', 'bars': 16})
        response = await interaction.wait_response(timeout=3)
        assert response.type == 5 and response.elapsed < 3  # deferred ("thinking") in time

        message = await interaction.wait_followup()
        assert message.files == {'piece.mid': MIDI}
        assert message.content == 'zelda, 16 bars'
        assert message is interaction.original and not message.loading  # the followup filled the defer
        # the bot reacted to its own message
        await fake.wait_for(lambda: fake.bot_reactions, 3, 'bot reaction')
        assert fake.bot_reactions == [(message.id, '👍')]
        assert message.reactions == {'👍': [fake.bot_id]}


async def test_autocomplete_returns_choices(fake):
    async with fake.running(MiniBot(fake.guild_id)):
        choices = await fake.autocomplete('compose', 'style', 'ba')
    assert choices == [{'name': 'Bach', 'value': 'bach'}, {'name': 'Baroque', 'value': 'baroque'}]


async def test_attachment_option_is_served_by_the_fake(fake):
    async with fake.running(MiniBot(fake.guild_id)):
        interaction = await fake.slash('inspect', {'midi': Upload('theme.mid', MIDI, 'audio/midi')})
        message = await interaction.wait_original()
    assert message.content == f'theme.mid {hashlib.sha256(MIDI).hexdigest()}'
    assert message.files == {'reversed.mid': MIDI[::-1]}  # multipart interaction callback


async def test_persistent_button_answers_a_click(fake):
    async with fake.running(MiniBot(fake.guild_id)):
        posted = await (await fake.slash('panel')).wait_original()
        assert posted.custom_ids == ['mini:like']
        click = await fake.click(posted.id, 'mini:like', user_id=fake.owner_id)
        answer = await click.wait_original()
    assert answer.content == f'liked by {fake.owner_id}' and answer.ephemeral


async def test_edit_original_after_defer_keeps_attachments(fake):
    async with fake.running(MiniBot(fake.guild_id)):
        interaction = await fake.slash('render')
        message = await fake.wait_for(lambda: interaction.original and interaction.original.edits == 2 and
                                      interaction.original, 3, 'second edit')
    assert (message.content, message.files, message.ephemeral) == ('v2', {'v1.mid': MIDI}, True)
    assert interaction.followups == []


async def test_modal_submit(fake):
    async with fake.running(MiniBot(fake.guild_id)):
        opened = await fake.slash('rename')
        assert (await opened.wait_response()).type == 9
        submitted = await fake.submit_modal(opened, {'mini:name': 'Overture'})
        assert (await submitted.wait_original()).content == 'named Overture'


async def test_raw_reaction_events_reach_the_bot(fake):
    async with fake.running(MiniBot(fake.guild_id)) as bot:
        uncached = 123456789012345678  # a message the bot has never seen
        await fake.react(uncached, '👎', user_id=42)
        kind, event = await next_reaction(bot)
        assert (kind, event.user_id, event.message_id, str(event.emoji)) == ('add', 42, uncached, '👎')
        assert event.guild_id == fake.guild_id and event.member.id == 42

        await fake.unreact(uncached, '👎', user_id=42)
        kind, event = await next_reaction(bot)
        assert (kind, event.user_id, event.message_id, str(event.emoji)) == ('remove', 42, uncached, '👎')


async def test_restart_against_the_same_fake_keeps_its_state(fake):
    async with fake.running(MiniBot(fake.guild_id)):
        posted = await (await fake.slash('panel')).wait_original()

    async with fake.running(MiniBot(fake.guild_id)) as bot:  # a new process, same Discord
        assert fake.identify_count == 2
        fetched = await bot.get_channel(fake.channel_id).fetch_message(posted.id)
        assert fetched.content == 'rate me'
        click = await fake.click(posted.id, 'mini:like')  # the old message's button still works
        assert (await click.wait_original()).content == f'liked by {fake.user_id}'


async def test_dropped_connection_resumes_and_replays_missed_events(fake):
    async with fake.running(MiniBot(fake.guild_id)) as bot:
        await fake.drop_connection()
        await fake.react(555, '👍')  # sent while the bot is away: replayed on RESUME
        await fake.wait_resumed()
        kind, event = await next_reaction(bot)
        assert (kind, event.message_id) == ('add', 555)
        assert fake.identify_count == 1 and bot.raw_reactions.empty()


async def test_late_response_gets_unknown_interaction(fake):
    fake.response_deadline = 0.1
    async with fake.running(MiniBot(fake.guild_id)) as bot:
        interaction = await fake.slash('slow')
        response = await interaction.wait_response()
        assert not response.accepted and response.elapsed > 0.1
        await fake.wait_for(lambda: getattr(bot, 'late_error', None), 3, 'NotFound in the bot')
        assert bot.late_error.code == 10062


async def test_unknown_route_is_a_recorded_404(fake):
    async with fake.running(MiniBot(fake.guild_id)) as bot:
        with pytest.raises(discord.NotFound):
            await bot.http.request(discord.http.Route('GET', '/voice/regions'))
    assert [(c.method, c.path, c.status) for c in fake.unknown_calls] == [('GET', '/voice/regions', 404)]
