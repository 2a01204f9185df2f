"""A fake Discord (the tests and the playground use it): the real discord.py client connects to it.

Typical test::

    async with FakeDiscord() as fake:               # server up, discord.py pointed at it
        async with fake.running(make_bot()):        # login, connect, wait for on_ready
            interaction = await fake.slash('compose', {'style': 'zelda'})
            response = await interaction.wait_response()   # must come within 3 s
            assert response.deferred and response.elapsed < 3
            message = await interaction.wait_followup()
            assert message.files['piece.mp3'].startswith(b'ID3')
            await fake.react(message.id, '👍')

See server.py for everything the fake records, and users.py for what a test can do. Quirks worth knowing:

* Discord (and so the fake) turns the first followup after a defer into the
  deferred message itself; its ephemerality is the defer's.
* discord.py sleeps 5 s before any IDENTIFY that is not its first (after an
  invalidated session); prefer ``drop_connection`` (RESUME) in tests, or a new client.
* Events gated by an intent the bot did not request are not delivered (a warning is logged).

Voice (``voice.py``): ``await fake.join_voice()`` puts the tester in the first voice channel as a
listening DAVE member; a bot that joins gets the voice gateway and UDP endpoint, and every transmission
it sends ends up, decrypted, in ``fake.voice.captures`` (``capture.pcm()`` decodes it).
``set_bot_permissions`` takes Connect or Speak away.
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
