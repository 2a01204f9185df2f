"""A fake Discord for end-to-end tests: the real discord.py client connects to it.

Typical test::

    async with FakeDiscord() as fake:               # server up, discord.py pointed at it
        async with fake.running(make_bot()):        # login, connect, wait for on_ready
            interaction = await fake.slash('compose', {'style': 'zelda'})
            assert (await interaction.wait_response()).deferred
            message = await interaction.wait_followup()
            assert message.files['piece.mp3'].startswith(b'ID3')

See server.py for everything the fake records and can do.
"""

from .records import CallbackRecord, FakeInteraction, RestCall, StoredAttachment, StoredMessage, Upload
from .server import FakeDiscord, GatewaySession

__all__ = (
    'FakeDiscord',
    'FakeInteraction',
    'CallbackRecord',
    'StoredMessage',
    'StoredAttachment',
    'RestCall',
    'Upload',
    'GatewaySession',
)
