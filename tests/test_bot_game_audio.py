"""The bot's game files, end to end against the fake Discord: /compose loop, layers and stinger,
and the Layers button."""

from __future__ import annotations

import io
import zipfile

import pytest

import db
from bot import BotConfig, build
from composer.generate.layers import LAYERS
from fakediscord import FakeDiscord


@pytest.fixture
async def fake():
    async with FakeDiscord() as server:
        yield server


def bot_config(tmp_path, tiny_checkpoint) -> BotConfig:
    return BotConfig(token="fake-token", database_url=f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}",
                     checkpoint=str(tiny_checkpoint), device="cpu")


async def test_compose_posts_loop_layers_and_stinger_and_the_layers_button(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        interaction = await fake.slash("compose", {"style": "doom", "bars": 4, "seed": 2, "loop": True,
                                                   "layers": True, "stinger": "victory"})
        await interaction.wait_response(3)

        def posted():
            message = interaction.original
            return message if message is not None and message.attachments and "👍" in message.reactions else None

        message = await fake.wait_for(posted, 90, "the posted piece")
        row = await db.piece_by_message(bot.db, message.id)
        names = set(message.files)
        base = f"mozart-{row.id}-doom"
        assert {f"{base}.ogg", f"{base}.beats.json", f"{base}.victory.zip"} | {f"{base}.{n}.zip" for n in LAYERS} <= names
        assert b"LOOPSTART=0" in message.files[f"{base}.ogg"]
        with zipfile.ZipFile(io.BytesIO(message.files[f"{base}.victory.zip"])) as archive:
            assert any(n.endswith("-victory.mid") for n in archive.namelist())

        click = await fake.click(message.id, "mozart:layers")
        assert (await click.wait_response(3)).ephemeral
        followup = await fake.wait_for(lambda: next((m for m in click.followups if m.files), None), 60, "layers")
        assert followup.ephemeral and sorted(followup.files) == sorted(f"mozart-{row.id}-{n}.zip" for n in LAYERS)
