"""Melodic intervals: counted per label and voice from the training pieces, mixed section by
section in a blend, and kept by the drafted lines."""

from __future__ import annotations

import numpy as np
import torch

from composer.music import tokens as T
from composer.corpus.encoded import load_split
from composer.analysis.metrics import voice_notes
from composer.generate.request import GenerationRequest
from composer.generate.sampling import interval_scores
from composer.nn.intervals import SPAN, IntervalBank

BASS = T.VOICE_INDEX["bass"]


def _bank(labels, habits):
    """A bank whose labels move only by the given intervals ({label: {voice: [interval, ...]}})."""
    counts = np.zeros((len(labels) + 1, T.DRUM_VOICE, 2 * SPAN + 1))
    for k, label in enumerate(labels):
        for v, steps in habits.get(label, {}).items():
            for step in steps:
                counts[[k, -1], v, step + SPAN] += 1000
    counts[-1] += 1  # every interval happens somewhere
    return IntervalBank(labels, counts)


def test_the_bank_counts_every_voices_steps_under_each_label(encoded_dir, tmp_path):
    split = load_split(encoded_dir, "train")
    bank = IntervalBank.from_split(split)
    assert bank.labels == list(split.games) + list(split.composers)
    def lead_steps(pieces):
        return sum(max(0, len(voice_notes(split.piece_grid(i), T.VOICE_INDEX["lead"])[2]) - 1) for i in pieces)

    lead = T.VOICE_INDEX["lead"]
    assert bank.counts[-1, lead].sum() == lead_steps(range(len(split.lengths)))
    for k, game in enumerate(split.games):
        assert bank.counts[k, lead].sum() == lead_steps(np.flatnonzero(split.game == k)), game
    bank.save(tmp_path / "intervals.npz")
    again = IntervalBank.load(tmp_path / "intervals.npz")
    assert again.labels == bank.labels and np.allclose(again.counts, bank.counts)
    p = bank.probabilities("no such label")
    assert np.allclose(p.sum(-1), 1) and np.allclose(p, bank.probabilities(None))


def test_a_candidate_is_scored_by_the_intervals_it_makes_with_both_neighbours():
    bank = _bank(["bach"], {"bach": {BASS: [12, -12, 0, 2, -2]}})
    column = torch.tensor([T.onset(48), T.HOLD, T.PITCHED_VOCAB, T.REST, T.onset(60)])  # PITCHED_VOCAB: hidden
    columns = torch.full((5, T.DRUM_VOICE), T.REST)
    columns[:, BASS] = column
    lines = bank.lines(None, "bach", 0.0)
    scores = interval_scores(columns, torch.tensor([2]), torch.tensor([BASS]), lines)[0]
    at = lambda pitch: pitch - T.PITCH_MIN  # noqa: E731  column of a candidate pitch
    assert scores[at(60)] > scores[at(54)]  # an octave up from C3, then a unison: Bach's basses do both
    assert scores[at(48)] > scores[at(54)]  # unison, then an octave up
    assert torch.argmax(scores) in (at(48), at(60))
    silent = interval_scores(columns, torch.tensor([2]), torch.tensor([0]), lines)[0]
    assert torch.allclose(silent, torch.zeros_like(silent))  # another voice's notes are not its neighbours


def test_a_blend_keeps_each_sections_parents_intervals():
    bank = _bank(["doom", "bach"], {"doom": {BASS: [7]}, "bach": {BASS: [12]}})
    share = torch.tensor([0.0, 0.0, 1.0, 1.0])  # two frames of the game, two of the composer
    lines = bank.lines("doom", "bach", share)
    voice = torch.tensor([BASS, BASS])
    logp = lines.log_probs(torch.tensor([0, 3]), voice)
    assert logp[0].argmax() == 7 + SPAN and logp[1].argmax() == 12 + SPAN
    window = lines.frames(slice(2, 4))  # a re-written window sees its own frames' parents
    assert window.log_probs(torch.tensor([0]), voice[:1])[0].argmax() == 12 + SPAN


def _intervals(generator, smoothness: float, voices, seeds) -> np.ndarray:
    """Every melodic interval (semitones) of ``voices`` in 8-bar doom pieces of ``seeds``."""
    out = []
    for seed in seeds:
        piece = generator.generate(GenerationRequest(style="doom", bars=8, seed=seed, steps=8, smoothness=smoothness))
        for v in voices:
            out += list(np.diff(T.pitch_of(piece.grid[:, v][piece.grid[:, v] >= T.PITCH_OFFSET])))
    return np.abs(np.array(out))


def test_smoothness_keeps_melodic_lines_from_leaping(generator):
    """The tiny, untrained test model leaps; its corpus's lines mostly step."""
    def wide_leaps(smoothness):
        return np.mean(_intervals(generator, smoothness, range(T.DRUM_VOICE), range(4)) > 7)

    assert wide_leaps(2.0) < 0.6 * wide_leaps(0.0)


def test_lines_keep_the_styles_intervals(generator):
    """Even the tiny test model's bass moves by octaves once its style's basses do."""
    def octaves(smoothness):
        return np.mean(_intervals(generator, smoothness, [BASS], range(3)) == 12)

    kept = generator.intervals
    try:
        generator.intervals = _bank(["doom"], {"doom": {BASS: [12, -12]}})
        assert octaves(2.0) > 2 * octaves(0.0) + 0.1
    finally:
        generator.intervals = kept
