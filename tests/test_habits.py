"""A style brings its habits: metres and tempi drawn from its training pieces, per seed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from composer.generate.request import GenerationRequest
from composer.generate.styles import StyleCatalog
from composer.nn.style_facts import style_habits


def test_style_habits_keep_the_common_metres_and_the_tempo_quartiles():
    habits = style_habits([60, 80, 100, 120, 140], Counter({"4/4": 90, "3/4": 8, "5/4": 2, "1/8": 10}))
    # 5/4: a rarity; 1/8: two-frame "bars", a MIDI file's bogus metre
    assert habits["metres"] == pytest.approx({"4/4": 90 / 98, "3/4": 8 / 98}, abs=1e-3)
    assert habits["tempo"] == 100 and habits["tempo_range"] == [80, 120]


def test_a_blend_mixes_its_labels_habits_by_blend():
    catalog = StyleCatalog(["doom"], ["bach"], label_info={
        "doom": {"metres": {"4/4": 1.0}, "tempo": 140.0, "tempo_range": [130.0, 150.0]},
        "bach": {"metres": {"3/4": 1.0}, "tempo": 80.0, "tempo_range": [70.0, 90.0]}})
    habits = catalog.habits(catalog.resolve("doom-bach"), blend=0.25)
    assert habits.metres == {"4/4": 0.75, "3/4": 0.25}
    assert habits.tempo == pytest.approx((115.0, 125.0, 135.0))
    assert catalog.habits(catalog.resolve("bach"), blend=0.25).metres == {"3/4": 1.0}
    assert StyleCatalog(["x"], []).habits(StyleCatalog(["x"], []).resolve("x"), 0.5).metres == {"4/4": 1.0}
    tempi = [habits.draw_tempo(np.random.default_rng(seed)) for seed in range(50)]
    assert 115 <= min(tempi) and max(tempi) <= 135 and len(set(tempi)) > 25  # not one tempo for all
    metres = Counter(habits.draw_metre(np.random.default_rng(seed)) for seed in range(400))
    assert 0.68 < metres["4/4"] / 400 < 0.82


def test_open_metre_and_tempo_are_drawn_from_the_style_and_stored_for_replay(generator):
    info = generator.catalog.label_info
    assert info["mozart"]["metres"] == {"3/4": 1.0} and info["doom"]["metres"] == {"4/4": 1.0}  # the fixtures
    waltz = generator.prepare(GenerationRequest(style="mozart", bars=4, form="through", seed=3)).request
    assert waltz.time_signature == "3/4"
    low, high = info["mozart"]["tempo_range"]
    assert low <= waltz.tempo <= high
    piece = generator.generate(GenerationRequest(style="mozart", bars=4, form="through", seed=3))
    assert piece.time_signature == (3, 4) and piece.extra["params"]["time_signature"] == "3/4"
    assert GenerationRequest.from_params(piece.extra["params"]) == waltz  # replays without drawing again
    asked = generator.prepare(GenerationRequest(style="mozart", time_signature="4/4", tempo=99, seed=3)).request
    assert (asked.time_signature, asked.tempo) == ("4/4", 99)  # what is asked for wins


def test_a_style_draws_its_usual_keys_but_a_primer_keeps_its_own(generator):
    habits = style_habits([100, 120], Counter({"4/4": 3}), Counter({"D minor": 60, "A minor": 38, "F# major": 2}))
    assert habits["keys"] == pytest.approx({"D minor": 60 / 98, "A minor": 38 / 98}, abs=1e-3)  # F#: a rarity
    catalog = StyleCatalog(["doom"], ["bach"], label_info={"doom": {"keys": {"D minor": 1.0}},
                                                           "bach": {"keys": {"G major": 1.0}}})
    keys = Counter(catalog.habits(catalog.resolve("doom-bach"), 0.5).draw_key(np.random.default_rng(s))
                   for s in range(200))
    assert set(keys) == {"D minor", "G major"} and 70 < keys["D minor"] < 130
    assert StyleCatalog(["x"], []).habits(StyleCatalog(["x"], []).resolve("x"), 0.5).draw_key(None) is None

    generator.catalog.label_info["doom"]["keys"] = {"E minor": 1.0}
    try:
        drawn = generator.prepare(GenerationRequest(style="doom", bars=4, seed=5)).request
        assert drawn.key == "E minor"
        piece = generator.generate(drawn)
        assert piece.key == "E minor" and piece.extra["params"]["key"] == "E minor"  # stored for replay
        remix = generator.prepare(GenerationRequest(style="doom", bars=4, seed=5, form="through", primer=piece,
                                                    keep=("melody",)))
        assert remix.request.key is None  # the primer's notes decide the key
    finally:
        del generator.catalog.label_info["doom"]["keys"]
