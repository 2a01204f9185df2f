"""Texture plans: drawn from the style's real bars, always with a line above the bass, and
followed by the draft; drums that repeat as a groove."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from composer.music import tokens as T
from composer.corpus.encoded import load_split
from composer.analysis.metrics import drum_groove, upper_line_share
from composer.generate.generator import Generator
from composer.generate.request import GenerationRequest
from composer.generate.steering import steering_for
from composer.nn.texture import FORCE, TextureBank, bar_breaks, bar_textures, regroove

LEAD, COUNTER, HARMONY, BASS, DRUMS = range(5)


@pytest.fixture(scope="module")
def bank(encoded_dir):
    return TextureBank.from_split(load_split(encoded_dir, "train"))


def test_bar_textures_count_onsets_and_sounding_cells():
    grid = np.zeros((32, 5), np.uint8)
    grid[0, LEAD], grid[1:8, LEAD] = T.onset(72), T.HOLD
    grid[8, LEAD] = T.onset(74)
    grid[::4, DRUMS] = T.drum_token("kick")
    onsets, sounding = bar_textures(grid, 16)
    assert onsets[0].tolist() == [2, 0, 0, 0, 4] and sounding[0].tolist() == [9, 0, 0, 0, 4]
    assert onsets[1].tolist() == [0, 0, 0, 0, 4]


def test_a_plan_is_the_styles_own_bars_laid_out_by_the_form(bank):
    sections = list("AAAABBBBAAAA")
    plan = bank.plan("doom", None, 0.0, 12, 16, sections, np.random.default_rng(3), 0.3)
    again = bank.plan("doom", None, 0.0, 12, 16, sections, np.random.default_rng(3), 0.3)
    assert np.array_equal(plan.onsets, again.onsets) and np.array_equal(plan.sounding, again.sounding)
    assert np.array_equal(plan.onsets[:4], plan.onsets[8:])  # the theme's texture returns with it
    real = {tuple(row) for row in bank.onsets[bank.piece_label[np.repeat(
        np.arange(len(bank.piece_label)), np.diff(bank.offsets))] == bank.labels.index("doom")].tolist()}
    assert {tuple(row) for row in plan.onsets.astype(int).tolist()} <= real  # every bar is a real doom bar
    assert (plan.onsets[:, DRUMS] > 0).all()  # doom has a beat in every bar
    bach = bank.plan(None, "bach", 1.0, 8, 16, None, np.random.default_rng(0), 0.3)
    assert (bach.onsets[:, DRUMS] == 0).all() and (bach.silent()[:, DRUMS]).all()  # chorales have no drums
    assert bank.plan("blupi", None, 0.0, 8, 16, None, np.random.default_rng(0), 0.3) is None  # no such label


def test_a_blend_takes_texture_from_both_parents(bank):
    drums_from_game = []
    for seed in range(40):
        plan = bank.plan("doom", "bach", 0.5, 8, 16, list("AABB" * 2), np.random.default_rng(seed), 0.3)
        drums_from_game.append(bool((plan.onsets[:, DRUMS] > 0).any()))
    assert 0.6 < np.mean(drums_from_game) < 1.0  # drums mostly from the game, now and then none (bach)


def test_a_plan_always_has_a_line_above_the_bass():
    # a label whose every bar is a bass line alone
    onsets = np.zeros((8, 5), np.uint8)
    onsets[:, BASS] = 4
    onsets[:4, LEAD] = 6  # half of another piece's bars have a lead: the typical lead bar
    bank = TextureBank(["solo"], np.array([0, 0], np.int16), np.array([16, 16], np.int16), np.array([0, 4, 8]),
                       onsets, onsets * 2, np.zeros(8, np.uint16))
    for seed in range(5):
        plan = bank.plan("solo", None, 0.0, 8, 16, None, np.random.default_rng(seed), 0.3)
        above = (plan.sounding[:, [LEAD, COUNTER, HARMONY]] > 0).any(1)
        assert above.mean() >= 0.75 and (~above).sum() <= 2  # at most a quarter without (an intro may stay)
        assert set(plan.onsets[:, LEAD].tolist()) <= {0.0, 6.0}


def test_kind_bias_silences_a_voice_and_pushes_a_lagging_one(bank):
    plan = bank.plan("doom", None, 0.0, 2, 16, None, np.random.default_rng(0), 0.3)
    plan.onsets[0] = [8, 0, 0, 4, 0]
    plan.sounding[0] = [16, 0, 0, 16, 0]
    x = torch.zeros((32, 5), dtype=torch.long)
    bias = plan.kind_bias(x, 8, 1.0)  # half a bar gone, nothing written yet
    assert bias[COUNTER, 0] == FORCE and (bias[COUNTER, 1:] == -FORCE).all()  # planned silent: rest
    assert bias[LEAD, 2] > bias[BASS, 2] > 0  # the lead is further behind its onsets than the bass
    assert bias[LEAD, 0] < 0  # and should be sounding
    assert (plan.kind_bias(x, 8, 0.0) == 0).all()  # texture 0: no steering


def test_regroove_repeats_a_pattern_with_fills_and_keeps_what_is_fixed():
    rng = np.random.default_rng(0)
    column = rng.choice([0, 0, 0, 1, 2, 3], size=8 * 16).astype(np.uint8)
    column[::16] = T.drum_token("kick")
    column[4::16] = T.drum_token("snare")
    free = np.ones(len(column), bool)
    free[:16] = False  # the first bar was kept from the source
    out = regroove(column, free, 16, np.random.default_rng(1), keep_own=0.0)
    assert np.array_equal(out[:16], column[:16])
    bars = out.reshape(8, 16)
    assert all(np.array_equal(bars[b], bars[1]) for b in (2, 4, 5, 6))  # one pattern
    assert np.array_equal(bars[3, 8:], column.reshape(8, 16)[3, 8:])  # the phrase's last half-bar: a fill
    piece_before, piece_after = (_drums_piece(c) for c in (column, out))
    assert drum_groove(piece_after) > drum_groove(piece_before) + 0.2


def _drums_piece(column):
    from composer.music.grid import Piece

    grid = np.zeros((len(column), 5), np.uint8)
    grid[:, DRUMS] = column
    grid[::8, LEAD] = T.onset(72)
    return Piece(grid=grid)


def test_a_composers_voice_that_sounds_through_the_bar_ends_a_gap_with_a_note(bank):
    plan = bank.plan(None, "bach", 1.0, 2, 16, None, np.random.default_rng(0), 0.3)
    assert plan.composed.all()  # a chorale's texture: its voices sound through
    plan.onsets[1], plan.sounding[1] = [4, 4, 4, 4, 0], [16, 16, 12, 16, 0]
    x = torch.full((32, 5), T.HOLD, dtype=torch.long)
    x[16:20, LEAD] = T.REST  # the lead has been silent for a beat of bar 2; the others hold
    x[19, BASS] = T.REST  # the bass only for a cell
    bias = plan.kind_bias(x, 20, 1.0)
    assert bias[LEAD, 2] > 2.0 and bias[LEAD, 0] < -2.0  # the gap ends with a note
    assert abs(bias[BASS, 2]) < 1.0  # a short breath stays the network's choice
    assert abs(bias[HARMONY, 2]) < 1.0  # (the harmony sounds only three quarters of the bar)
    assert plan.kind_bias(torch.full((32, 5), T.REST), 0, 1.0)[LEAD, 2] > 2.0  # the piece's opening too
    doom = bank.plan("doom", None, 0.0, 2, 16, None, np.random.default_rng(0), 0.3)
    doom.onsets[1], doom.sounding[1] = plan.onsets[1], plan.sounding[1]
    assert not doom.composed.any() and doom.kind_bias(x, 20, 1.0)[LEAD, 2] < 2.0  # a game's texture: left alone


def test_bar_breaks_mark_the_beats_where_the_whole_band_rests():
    grid = np.zeros((48, 5), np.uint8)
    grid[0, LEAD], grid[1:4, LEAD] = T.onset(72), T.HOLD  # bar 1: the first beat only
    grid[20, DRUMS] = T.drum_token("kick")  # bar 2: a drum on its second beat
    grid[40, BASS], grid[41:48, BASS] = T.onset(40), T.HOLD  # bar 3: a bass note through its last two beats
    assert bar_breaks(grid, 16).tolist() == [0b1110, 0b1101, 0b0011]


def test_a_break_in_the_plan_silences_every_voice_for_its_beat(bank, composer):
    plan = bank.plan("doom", None, 0.0, 2, 16, None, np.random.default_rng(0), 0.3)
    plan.breaks[:] = 0b0100  # the third beat of every bar
    plan.onsets[0], plan.sounding[0] = [4] * 5, [16] * 5  # every voice plays in bar 1
    x = torch.full((32, 5), T.HOLD, dtype=torch.long)
    assert (plan.kind_bias(x, 8, 1.0)[:, 0] == FORCE).all() and (plan.kind_bias(x, 8, 1.0)[:, 1:] == -FORCE).all()
    assert (plan.kind_bias(x, 4, 1.0)[:, 0] < FORCE).all()  # other beats: the plan's counts
    # composed: a bank whose every bar breaks on its third beat gives a piece that does
    kept = composer.textures
    try:
        composer.textures = replace(kept, breaks=np.full(len(kept.breaks), 0b0100, np.uint16))
        piece = composer.generate(GenerationRequest(style="doom", bars=8, form="through", seed=4))
    finally:
        composer.textures = kept
    beats = piece.grid[: 8 * 16].reshape(8, 4, 4, 5)
    assert (beats[:, 2] == T.REST).all()


@pytest.fixture(scope="module")
def composer(tiny_composer):
    return Generator.load(tiny_composer, device="cpu")


def test_the_composer_carries_its_textures_and_follows_its_plan(composer):
    assert composer.textures is not None and set(composer.textures.labels) >= {"doom", "bach"}
    steered, free = [], []
    for seed in (11, 12, 13):  # one free piece can follow a plan by chance (-0.33..0.15 over seeds 11-18)
        request = GenerationRequest(style="doom", bars=16, form="through", seed=seed)
        prepared = composer.prepare(request)
        plan = steering_for([prepared.request], [prepared.style], [prepared.request.blend], 16, composer.textures).plans[0]
        silent = plan.silent()
        active = ~silent[:, :T.DRUM_VOICE]

        def follows(piece):
            """(how closely the piece's onsets per voice and bar follow the plan's, its onsets there)"""
            made = bar_textures(piece.grid, 16)[0][:, :T.DRUM_VOICE][active]
            return np.corrcoef(made, plan.onsets[:, :T.DRUM_VOICE][active])[0, 1], made.sum()

        piece = composer.generate(request)
        assert silent.any() and (bar_textures(piece.grid, 16)[1][silent] == 0).all()  # a voice the plan rests, rests
        steered.append(follows(piece))
        free.append(follows(composer.generate(request.replace(texture=0.0))))
    steered, free = np.mean(steered, 0), np.mean(free, 0)
    # the tiny network wants a note in nearly every cell; steered, it is busier where the plan is busier
    assert steered[0] > 0.2 and steered[0] > free[0] + 0.2 and steered[1] < free[1]
    assert upper_line_share(piece) >= 0.75


def test_texture_zero_composes_as_before(composer):
    request = GenerationRequest(style="doom-bach", bars=8, seed=5)
    plain = Generator(composer.model, composer.meta, "cpu", composer.originality, composer.draft,
                      intervals=composer.intervals, precision=composer.precision)  # no textures
    assert composer.intervals is not None  # the recipe's folder has its corpus's intervals
    before = composer.generate(request.replace(texture=0.0)).grid
    assert np.array_equal(before, plain.generate(request.replace(texture=0.0)).grid)
    assert not np.array_equal(composer.generate(request).grid, before)


def test_a_blends_texture_is_its_main_parents_in_every_section():
    """Like its lines, a blend's texture plan is its main parent's through the whole piece: only the
    networks' label changes from section to section. (The game's texture under the composer's
    lines was heard as a third style: zelda-bach pieces whose main parent is Bach 74 -> 89 % heard
    as a parent.)"""
    from composer.generate.conditions import texture_share

    game_bar = [2, 5, 0, 4, 8]  # a lead and a busy counter over the bass, and a beat
    composer_bar = [6, 0, 0, 4, 0]  # a lead over the bass, no counter, no drums
    onsets = np.array([game_bar] * 4 + [composer_bar] * 4, np.uint8)
    bank = TextureBank(["game", "composer"], np.array([0, 1], np.int16), np.array([16, 16], np.int16),
                       np.array([0, 4, 8]), onsets, onsets * 2, np.zeros(8, np.uint16))
    sections = list("AAAABBAA")
    for main, bar in ((1.0, composer_bar), (0.0, game_bar)):
        per_bar = torch.tensor([main if letter == "A" else 1.0 - main for letter in sections])
        share = texture_share(per_bar.repeat_interleave(16))
        plan = bank.plan("game", "composer", share[::16].numpy(), 8, 16, sections, np.random.default_rng(0), 0.3)
        assert plan.onsets[:, [LEAD, COUNTER]].tolist() == [bar[:2]] * 8  # the B section too
    assert texture_share(0.5) == 0.5  # parents mixed throughout (texture 0, a remix): as asked
