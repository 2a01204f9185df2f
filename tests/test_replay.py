"""Every stored piece replays: its row (request, seed, primer) regenerates the identical MIDI.

Each kind of piece is made through the fake Discord exactly as a person would make it, with
no seed given (the bot chooses it), then rebuilt from the database alone.
"""

from __future__ import annotations

import pytest

import db
from bot import build
from cogs.utils.replay import request_of
from composer.generate.generator import Generator
from composer.music.midi_io import to_midi
from composer.generate.request import GenerationRequest
from service.jobs import Job
from fakediscord import Upload
from tests.conftest import bot_config, posted_piece


async def _click(fake, message, custom_id):
    interaction = await fake.click(message.id, custom_id)
    return await posted_piece(fake, interaction)


@pytest.mark.slow
async def test_every_kind_of_stored_piece_regenerates_the_identical_midi(fake, tmp_path, tiny_checkpoint):
    source = Generator.load(tiny_checkpoint).generate(GenerationRequest(style="doom", bars=4, seed=1, steps=4))
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        composed = await posted_piece(fake, await fake.slash("compose", {"style": "zelda-bach", "bars": 4}))
        remixed = await posted_piece(fake, await fake.slash(
            "remix", {"midi": Upload("tune.mid", to_midi(source)), "style": "bach", "keep": "melody,drums",
                      "strength": 0.6}))
        made = [composed, remixed]
        for custom_id in ("mozart:variation", "mozart:extend", "mozart:reroll"):
            made.append(await _click(fake, composed, custom_id))
        made.append(await _click(fake, remixed, "mozart:reroll"))
        sound = await fake.click(composed.id, "mozart:sound")
        picker = await fake.wait_for(lambda: sound.original, 3, "the sound menu")
        select_id = next(c for c in picker.custom_ids if c.startswith("mozart:sound-pick"))
        made.append(await posted_piece(fake, await fake.select(picker.id, select_id, ["piano"])))

        rows = [await db.piece_by_message(bot.db, message.id) for message in made]
        assert [row.kind for row in rows] == ["compose", "remix", "variation", "extend", "reroll", "reroll",
                                             "resound"]
        for row in rows:
            request = await request_of(bot.db, row)
            assert request.seed == row.seed
            replayed = await bot.studio.submit(Job(request=request, sound=row.params["sound"]))
            assert replayed.files["mid"] == row.midi, f"{row.kind} piece {row.id} did not replay"
        # A different seed is a different piece: the equality above is not vacuous.
        other = await bot.studio.submit(Job(request=(await request_of(bot.db, rows[1])).replace(seed=rows[1].seed + 1),
                                            sound="chip"))
        assert other.files["mid"] != rows[1].midi
