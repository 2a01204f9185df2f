"""Serving versions side by side: Thompson assignment, the studio's versions, the simulated panel."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from composer.music import tokens as T
from composer.feedback.bandit import Tally, choose, shares
from composer.feedback.panel import Panel
from composer.generate.generator import Generator
from composer.generate.request import GenerationRequest
from service.jobs import Job
from service.studio import Studio
from service.versions import VersionError
from tests.conftest import synthetic_piece


def test_thompson_assignment_converges_to_the_better_version_and_keeps_the_floor():
    """A simulated stream: requests assigned by Thompson sampling, each piece liked with its
    version's true chance; the better version ends up with most requests, the other with
    about its floor share."""
    truth = {"v1": 0.35, "v2": 0.6}
    tallies = {v: Tally() for v in truth}
    rng = np.random.default_rng(0)
    picks = []
    for _ in range(3000):
        version = choose(tallies, rng, floor=0.1)
        picks.append(version)
        liked = rng.random() < truth[version]
        t = tallies[version]
        tallies[version] = Tally(t.likes + liked, t.dislikes + (not liked))
    late = picks[-1000:]
    assert late.count("v2") / len(late) > 0.8
    assert late.count("v1") / len(late) >= 0.07  # the floor keeps measuring the other version
    assert shares(tallies, floor=0.1)["v2"] > 0.85
    low, high = tallies["v2"].interval()
    assert low < truth["v2"] < high


def test_shares_respect_the_floor_and_add_up():
    tallies = {"a": Tally(100, 10), "b": Tally(5, 100), "c": Tally()}
    s = shares(tallies, floor=0.1)
    assert sum(s.values()) == pytest.approx(1.0)
    assert min(s.values()) >= 0.1 - 1e-9
    assert max(s, key=s.get) == "a"
    with pytest.raises(ValueError):
        choose({}, np.random.default_rng(0))


@pytest.fixture
def second_version(tiny_checkpoint, tmp_path):
    """A copy of the tiny checkpoint under another version name."""
    folder = tmp_path / "v-next"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["version"] = "tiny-next"
    (folder / "config.json").write_text(json.dumps(config))
    return folder


async def test_studio_composes_with_the_assigned_version(generator, second_version):
    studio = Studio(generator, render_fn=lambda piece, sound, formats: _Rendered())
    studio.add(Generator.load(second_version, device="cpu"))
    assert studio.versions == [generator.version, "tiny-next"]
    request = GenerationRequest(style="doom", bars=4, seed=3)
    try:
        made = {v: await studio.submit(Job(request=request, version=v)) for v in studio.versions}
        assert {v: r.piece.extra["model_version"] for v, r in made.items()} == {v: v for v in studio.versions}
        with pytest.raises(VersionError):
            studio.add(Generator.load(second_version, device="cpu"))  # already served
        studio.retire(generator.version)
        assert studio.generator.version == "tiny-next"
        with pytest.raises(VersionError, match="only one"):
            studio.retire("tiny-next")
    finally:
        await studio.close()


class _Rendered:
    data: dict = {}
    sound = "chip"
    warnings: list = []


def test_panel_prefers_music_like_the_reference():
    real = [synthetic_piece(60 + k, 8) for k in range(6)]
    panel = Panel.from_real(real, raters=8, seed=0)
    odd = synthetic_piece(60, 8, drums=False)
    odd.grid[:, :4] = odd.grid[:1, :4]  # the first chord struck again on every frame
    assert panel.quality(real[0]) > panel.quality(odd)
    panel.calibrate(real + [odd])
    assert panel.like_chance(real[0]) > panel.like_chance(odd)
    votes = panel.rate(real[0], np.random.default_rng(0))
    assert set(votes.values()) <= {1, -1} and set(votes) <= set(range(8))


def test_a_per_style_panel_judges_a_piece_by_its_own_styles_music():
    from composer.feedback import panel as P

    dense = [synthetic_piece(60 + k, 8, game="doom") for k in range(P.MIN_STYLE_EXCERPTS)]
    sparse = [synthetic_piece(60 + k, 8, drums=False, composer="bach") for k in range(P.MIN_STYLE_EXCERPTS)]
    for piece in sparse:
        piece.grid[1::2, 0] = T.HOLD  # the lead holds its notes: half as many onsets
    panel = Panel.from_real(dense + sparse, per_style=True)
    assert set(panel.styles) == {"doom", "bach"}
    piece = synthetic_piece(61, 8)
    piece.game, piece.composer = "doom", None
    as_doom = panel.quality(piece)
    piece.game, piece.composer = None, "bach"
    assert as_doom > panel.quality(piece)
    piece.game = piece.composer = None  # no label with its own music: judged against all of it
    assert panel.quality(piece) == -panel._cost(P.piece_metrics(piece), panel.reference)


async def test_a_version_loaded_or_retired_in_one_bot_process_follows_in_the_others(generator, second_version,
                                                                                    tmp_path):
    """A cluster: `/model load` and `/model retire` reach one process; the others read the served set again."""
    import db
    from cogs.utils.versions import Versions

    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}")
    await db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    studios = [Studio(generator, render_fn=lambda piece, sound, formats: _Rendered()) for _ in range(2)]
    here, there = (Versions(s, sessions, second_version.parent, floor=0.1, device="cpu") for s in studios)
    try:
        version = await here.load(second_version.name)
        assert there.studio.versions == [generator.version]
        await there.sync()
        assert there.studio.versions == [generator.version, version]
        await here.retire(version)
        await there.sync()
        assert there.studio.versions == [generator.version]
    finally:
        for studio in studios:
            await studio.close()
        await engine.dispose()
