"""Sharding by configuration: one process with several shards, or a cluster of processes sharing the database."""

from __future__ import annotations

import pytest

import db
from bot import ShardedMozart, build
from fakediscord import FakeDiscord
from tests.conftest import bot_config, posted_piece


@pytest.mark.slow
async def test_auto_sharded_bot_composes_on_the_shard_discord_routes_to(tmp_path, tiny_checkpoint):
    async with FakeDiscord(recommended_shards=2) as fake:
        bot = await build(bot_config(tmp_path, tiny_checkpoint, shards="auto"))
        assert isinstance(bot, ShardedMozart)
        async with fake.running(bot):
            await fake.wait_for(lambda: len([s for s in fake._sessions.values() if s.connected]) == 2, 10,
                                "two shard connections")
            assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
            interaction = await fake.slash("compose", {"style": "doom", "bars": 4, "seed": 3})
            message = await posted_piece(fake, interaction)
            assert (await db.piece_by_message(bot.db, message.id)).seed == 3
            assert bot.get_guild(fake.guild_id).shard_id == (fake.guild_id >> 22) % 2


@pytest.mark.slow
async def test_a_cluster_of_two_processes_shares_the_work_and_the_buttons(tmp_path, tiny_checkpoint):
    """Each process runs one shard of two; a button keeps working after its shard moves to the other process."""
    async with FakeDiscord() as fake:
        home = (fake.guild_id >> 22) % 2  # the shard of the test server
        first = await build(bot_config(tmp_path, tiny_checkpoint, shards=2, shard_ids=(home,)))
        other = await build(bot_config(tmp_path, tiny_checkpoint, shards=2, shard_ids=(1 - home,)))
        async with fake.running(first), fake.running(other):
            assert first.get_guild(fake.guild_id) is not None and other.get_guild(fake.guild_id) is None
            interaction = await fake.slash("compose", {"style": "doom", "bars": 4, "seed": 5})
            message = await posted_piece(fake, interaction)
            assert not [c for c in fake.calls if c.path.startswith("/interactions/") and str(interaction.id) in c.path
                        and c.status >= 400]  # answered once, by the shard's process
            dm = await fake.slash("styles", channel_id=fake.dm_channel_id())  # DMs arrive on shard 0
            assert (await dm.wait_response(3)).type == 4
        # the server's shard moves to a new process (a restart, a rebalance): the old post's buttons still work
        moved = await build(bot_config(tmp_path, tiny_checkpoint, shards=2, shard_ids=(home,)))
        async with fake.running(moved):
            click = await fake.click(message.id, "mozart:variation")
            variation = await posted_piece(fake, click)
            row = await db.piece_by_message(moved.db, variation.id)
            assert row.kind == "variation" and row.parent_id == (await db.piece_by_message(moved.db, message.id)).id
