"""Intervals: counted per label and voice from the training pieces (melodic, and vertical between
voices), calibrated by the networks' own, mixed section by section in a blend, and kept by the
drafted lines and chords."""

from __future__ import annotations

import numpy as np
import torch

from composer.music import tokens as T
from composer.corpus.encoded import load_split
from composer.analysis.metrics import voice_notes
from composer.generate.request import GenerationRequest
from composer.generate.calibrate import calibrate
from composer.generate.sampling import vertical_scores, interval_scores
from composer.nn.intervals import SPAN, IntervalBank, count

BASS = T.VOICE_INDEX["bass"]
LEAD = T.VOICE_INDEX["lead"]


def _bank(labels, habits):
    """A bank whose labels move only by the given intervals ({label: {voice: [interval, ...]}})."""
    counts = np.zeros((len(labels) + 1, T.DRUM_VOICE, 2 * SPAN + 1))
    for k, label in enumerate(labels):
        for v, steps in habits.get(label, {}).items():
            for step in steps:
                counts[[k, -1], v, step + SPAN] += 1000
    counts[-1] += 1  # every interval happens somewhere
    return IntervalBank(labels, {"melodic": counts})


def _chords(labels, habits):
    """A bank whose labels' voices sound only the given intervals above the bass ({label: {voice: [interval]}})."""
    vertical = np.ones((len(labels) + 1, T.DRUM_VOICE, T.DRUM_VOICE, 12))
    for k, label in enumerate(labels):
        for v, intervals in habits.get(label, {}).items():
            for interval in intervals:
                vertical[[k, -1], v, BASS, interval % 12] += 1000
    melodic = np.ones((len(labels) + 1, T.DRUM_VOICE, 2 * SPAN + 1))
    return IntervalBank(labels, {"melodic": melodic, "vertical": vertical})


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
    assert again.labels == bank.labels and again.tables.keys() == bank.tables.keys()
    assert all(np.allclose(again.tables[name], bank.tables[name]) for name in bank.tables)
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


def test_a_blends_lines_mix_its_parents_intervals_by_its_share():
    bank = _bank(["doom", "bach"], {"doom": {BASS: [7]}, "bach": {BASS: [12]}})
    bass = torch.tensor([BASS])
    game, composer, both = (bank.lines("doom", "bach", share).log_odds("melodic", bass)[0] for share in (0.0, 1.0, 0.5))
    assert game.argmax() == 7 + SPAN and composer.argmax() == 12 + SPAN
    assert both[7 + SPAN] > both[5 + SPAN] + 2 and both[12 + SPAN] > both[5 + SPAN] + 2


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


def test_vertical_intervals_are_counted_at_each_onset_above_every_voice_sounding():
    grid = np.full((8, T.N_VOICES), T.REST)
    grid[:, BASS] = [T.onset(48)] + [T.HOLD] * 7  # C3 held through
    grid[[0, 4], LEAD] = [T.onset(64), T.onset(67)]  # E4 then G4 over it
    grid[[1, 2, 3, 5, 6, 7], LEAD] = T.HOLD
    vertical = count(grid)["vertical"]
    assert vertical[LEAD, BASS, 4] == 1 and vertical[LEAD, BASS, 7] == 1 and vertical[LEAD, BASS].sum() == 2
    assert vertical[BASS, LEAD, (48 - 64) % 12] == 1 and vertical[BASS, LEAD].sum() == 1  # the bass's one onset
    assert vertical[T.VOICE_INDEX["counter"]].sum() == 0  # a silent voice sounds nothing


def test_calibration_scores_what_the_networks_miss_not_what_they_already_do():
    bank = _bank(["doom"], {"doom": {BASS: [0, 0, 12]}})
    grid = np.full((8, T.N_VOICES), T.REST)
    grid[:, BASS] = [T.onset(48)] * 8  # the networks' own bass repeats its note and never leaps an octave
    calibrated = bank.calibrated([(grid, ["doom"])] * 20)
    before, after = bank.odds("doom", "melodic")[BASS], calibrated.odds("doom", "melodic")[BASS]
    assert before[SPAN] > before[SPAN + 12]  # the style alone favours the repeat, which the networks overdo
    assert after[SPAN + 12] > after[SPAN]  # calibrated: the octave they miss counts most


def test_a_candidate_is_scored_by_the_intervals_it_sounds_above_the_bass():
    bank = _chords(["bach"], {"bach": {LEAD: [4, 7]}})
    columns = torch.full((3, T.DRUM_VOICE), T.REST)
    columns[:, BASS] = torch.tensor([T.onset(48), T.HOLD, T.HOLD])  # C3 sounding
    columns[2, LEAD] = T.PITCHED_VOCAB  # hidden: being drawn
    scores = vertical_scores(columns, torch.tensor([2]), torch.tensor([LEAD]), bank.lines(None, "bach", 0.0))[0]
    at = lambda pitch: pitch - T.PITCH_MIN  # noqa: E731
    assert scores[at(64)] > scores[at(62)] and scores[at(67)] > scores[at(66)]  # E and G over C, not D or F#
    assert torch.isclose(scores[at(76)], scores[at(64)])  # modulo the octave


def test_consonance_keeps_the_styles_chords(generator):
    """The tiny model's lead sounds its style's interval above the bass far more often with consonance on."""
    def thirds(consonance):
        hits = total = 0
        for seed in range(3):
            piece = generator.generate(GenerationRequest(style="doom", bars=8, seed=seed, steps=8, consonance=consonance))
            vertical = count(piece.grid)["vertical"][LEAD, BASS]
            hits, total = hits + vertical[4], total + vertical.sum()
        return hits / max(total, 1)

    kept = generator.intervals
    try:
        generator.intervals = _chords(["doom"], {"doom": {LEAD: [4]}})
        assert thirds(2.0) > 2 * thirds(0.0) + 0.1
    finally:
        generator.intervals = kept


def test_calibrate_counts_the_networks_own_pieces_for_every_label(generator, tmp_path):
    bank = calibrate(generator, pieces_per_label=1, bars=4)
    assert set(bank.own) == {"melodic", "vertical"}
    for k, label in enumerate(generator.catalog.games + generator.catalog.composers):
        assert bank.own["melodic"][bank.labels.index(label)].sum() > 0, label
    bank.save(tmp_path / "intervals.npz")
    again = IntervalBank.load(tmp_path / "intervals.npz")
    assert all(np.allclose(again.own[name], bank.own[name]) for name in bank.own)


def test_the_textures_command_rebuilds_and_calibrates_a_folders_intervals(tiny_checkpoint, encoded_dir, tmp_path):
    import shutil

    from click.testing import CliRunner

    from composer.cli.textures import textures_command
    from composer.generate.generator import Generator

    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "intervals.npz").unlink()  # a folder from before the tables
    result = CliRunner().invoke(textures_command, ["--checkpoint", str(folder), "--data", str(encoded_dir), "--pieces-per-label", "1"])
    assert result.exit_code == 0, result.output
    assert "calibrated" in result.output and "not calibrated" not in result.output
    bank = Generator.load(folder, device="cpu").intervals
    assert set(bank.tables) == {"melodic", "vertical", "register"} and set(bank.own) == {"melodic", "vertical"}


def _blend_bass_moves(generator, form: str, seeds) -> dict[str, np.ndarray]:
    """The bass's melodic steps (semitones) in zelda-bach pieces of ``form`` where the game's
    basses move by fifths and the composer's by octaves, as "main" and "other" (the interval of the
    piece's main parent, or of the other), in the sections of the main parent ("in main") and of
    the other ("in other")."""
    from composer.generate.conditions import blend_over_frames, lines_share

    style = generator.catalog.resolve("zelda-bach")
    generator.intervals = _bank([style.game, style.composer],
                                {style.game: {BASS: [7, -7]}, style.composer: {BASS: [12, -12]}})
    moves = {"in main": [], "in other": []}
    for seed in seeds:
        request = GenerationRequest(style="zelda-bach", bars=8, form=form, seed=seed, smoothness=2.0, tonality=0.0,
                                    consonance=0.0, variation=0.0)
        piece = generator.generate(request)
        share = blend_over_frames(generator.prepare(request).request, style, piece.frames_per_bar)
        composer_main = lines_share(share) > 0.5
        interval = {True: 12, False: 7}  # the composer's, the game's
        column = piece.grid[:, BASS]
        onsets = np.flatnonzero(column >= T.PITCH_OFFSET)
        steps = np.abs(np.diff(T.pitch_of(column[onsets])))
        for frame, step in zip(onsets[1:], steps):
            section_composers = float(share[frame]) > 0.5
            named = "main" if step == interval[composer_main] else "other" if step == interval[not composer_main] else ""
            moves["in main" if section_composers == composer_main else "in other"].append(named)
    return {k: np.array(v) for k, v in moves.items()}


def test_a_drafted_blend_speaks_its_main_parents_lines_in_every_section(tiny_composer):
    """Each section keeps its own parent's texture and network label, but in every section the
    bass moves as the main parent's basses do."""
    from composer.generate.generator import Generator

    moves = _blend_bass_moves(Generator.load(tiny_composer, device="cpu"), "AABA", range(4))
    for where, named in moves.items():
        assert len(named) >= 10, where
        assert np.mean(named == "main") > np.mean(named == "other") + 0.1, where


def test_a_blends_lines_are_its_main_parents_throughout():
    """Each section keeps its parent's texture, but the lines speak the language of the parent
    with most of the bars (a hint of the other; a tie goes to the opening's parent)."""
    from composer.generate.conditions import BLEND_HINT, lines_share

    low, high = BLEND_HINT, 1 - BLEND_HINT
    assert lines_share(torch.tensor([high] * 12 + [low] * 4)) == high  # AABA, the theme the composer's
    assert lines_share(torch.tensor([low] * 12 + [high] * 4)) == low
    assert lines_share(torch.tensor([low] * 8 + [high] * 8)) == low  # a tie: the opening's
    assert lines_share(0.3) == 0.3  # one share throughout (a remix, texture 0)
    bank = _bank(["doom", "bach"], {"doom": {BASS: [7]}, "bach": {BASS: [12]}})
    lines = bank.lines("doom", "bach", lines_share(torch.tensor([high] * 12 + [low] * 4)))
    bass = torch.tensor([BASS])
    assert lines.log_odds("melodic", bass)[0].argmax() == 12 + SPAN


def test_the_register_keeps_a_voice_where_the_style_puts_it_without_pulling_it_to_the_middle():
    """A composer whose pieces' leads lie anywhere from 60 to 84: a lead at 62, 72 or 82 is scored
    alike (multiplied in as counted, the pooled register pulled every piece towards 72 and the
    composers' lines came out a third narrower than real ones), and one at 40, where no piece
    goes, is held out. A game's register, whose lines were wide enough, stays as counted."""
    from composer.nn.intervals import N_PITCHES

    register = np.ones((2, T.DRUM_VOICE, N_PITCHES))
    register[0, LEAD, 60 - T.PITCH_MIN:85 - T.PITCH_MIN] += 1000  # the style's pieces, pooled
    register[1] = register[0]
    bank = IntervalBank(["mozart"], {"melodic": np.ones((2, T.DRUM_VOICE, 2 * SPAN + 1)), "register": register})

    def lead(game, composer):
        odds = bank.lines(game, composer, 1.0 if composer else 0.0).log_odds("register", torch.tensor([LEAD]))[0]
        return {pitch: float(odds[pitch - T.PITCH_MIN]) for pitch in (40, 62, 72, 82)}

    at = lead(None, "mozart")
    assert at[62] == at[72] == at[82]
    assert at[40] < at[72] - np.log(20)
    as_a_game = lead("mozart", None)
    assert as_a_game[62] < as_a_game[72] - 0.2 and as_a_game[82] < as_a_game[72] - 0.2
