"""The realism critic: it learns to tell real music from made, best_of chooses with it, and it
rates pieces for KTO fine-tuning."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from composer.music import tokens as T
from composer.cli import cli
from composer.feedback.critic_training import rate_by_style, train_critic
from composer.judge.critic import Critic, CriticConfig, CriticError, windows_of
from composer.feedback.records import read_records
from composer.generate.generator import Generator, candidate_seeds
from composer.generate.request import GenerationRequest
from tests.conftest import fixture_pieces

SMALL = CriticConfig(embed=4, channels=16, dilations=(1, 2, 4), steps=150, batch=32, lr=5e-3)


def scrambled(grid: np.ndarray, seed: int) -> np.ndarray:
    """The grid with every pitched onset moved to a random pitch within an octave: the rhythm
    is kept, the melody and harmony are noise."""
    rng = np.random.default_rng(seed)
    out = grid.copy()
    pitched = out[:, : T.DRUM_VOICE]
    onsets = pitched >= T.PITCH_OFFSET
    moved = pitched.astype(np.int64) + rng.integers(-12, 13, size=pitched.shape)
    pitched[onsets] = np.clip(moved, T.PITCH_OFFSET, T.PITCHED_VOCAB - 1)[onsets]
    return out


@pytest.fixture(scope="module")
def data():
    real = [p.grid for p in fixture_pieces()]
    fake = [scrambled(g, i) for i, g in enumerate(real)]
    return real, fake


@pytest.fixture(scope="module")
def critic(data):
    real, fake = data
    return train_critic(real[::2], fake[::2], SMALL, heldout_real=real[1::2], heldout_generated=fake[1::2], quiet=True)


def test_the_critic_tells_held_out_real_music_from_scrambled(critic, data):
    real, fake = data
    assert critic.summary.heldout_balanced_accuracy >= 0.9
    # Held out, each real piece scores above its own scrambled copy.
    assert (critic.scores(real[1::2]) > critic.scores(fake[1::2])).mean() >= 0.9


def test_the_key_of_a_piece_tells_the_critic_little(critic, data):
    """Trained with random transpositions: a real piece moved by a few semitones is still real."""
    real, _ = data
    up = []
    for grid in real[1::2]:
        moved = grid.astype(np.int64)
        pitched = moved[:, : T.DRUM_VOICE]
        pitched[pitched >= T.PITCH_OFFSET] = np.minimum(pitched[pitched >= T.PITCH_OFFSET] + 3, T.PITCHED_VOCAB - 1)
        up.append(moved)
    assert (critic.scores(up) > 0).mean() >= 0.8


def test_a_saved_critic_scores_as_it_did(critic, data, tmp_path):
    critic.save(tmp_path)
    again = Critic.load(tmp_path)
    grids = data[0][:4] + data[1][:4]
    assert np.allclose(again.scores(grids), critic.scores(grids), atol=0.05)  # saved in fp16
    assert again.summary.heldout_balanced_accuracy == critic.summary.heldout_balanced_accuracy
    (tmp_path / "critic.json").write_text("{}")
    with pytest.raises(CriticError, match="not a Mozart critic"):
        Critic.load(tmp_path)


def test_a_short_piece_still_gets_a_window():
    assert windows_of(np.zeros((20, T.N_VOICES), np.uint8), 64, 32).shape == (1, 64, T.N_VOICES)
    assert len(windows_of(np.zeros((256, T.N_VOICES), np.uint8), 64, 32)) == 7


def test_rating_is_by_style_so_no_style_is_preferred_wholesale():
    styles = ["doom"] * 6 + ["bach"] * 6
    realism = np.array([5, 6, 7, 8, 9, 10, -10, -9, -8, -7, -6, -5], float)  # every doom piece beats every bach one
    verdicts = rate_by_style(styles, realism, 1 / 3)
    assert verdicts == [-1, -1, 0, 0, 1, 1, -1, -1, 0, 0, 1, 1]


# -- best_of -------------------------------------------------------------------------------
BEST_OF = GenerationRequest(style="doom-bach", bars=4, time_signature="4/4", tempo=120, key="C major", seed=5,
                            steps=4, form="through", best_of=3)


@pytest.fixture(scope="module")
def criticised(tiny_checkpoint, critic, tmp_path_factory):
    """The tiny checkpoint with a critic beside it (and no reward model), loaded as the bot would."""
    folder = tmp_path_factory.mktemp("criticised") / "tiny"
    shutil.copytree(tiny_checkpoint, folder)
    critic.save(folder)
    return Generator.load(folder, device="cpu")


def test_best_of_keeps_the_candidate_the_critic_finds_most_real(criticised):
    assert criticised.reward is None and criticised.critic is not None
    piece = criticised.generate(BEST_OF)
    contest = piece.extra["best_of"]
    alone = [criticised.generate(BEST_OF.replace(seed=s, best_of=1)) for s in candidate_seeds(5, 3)]
    realism = criticised.critic.scores([p.grid for p in alone])
    assert contest["realism"] == pytest.approx(realism, abs=1e-3)
    assert contest["chosen"] == int(np.argmax(realism))
    assert np.array_equal(piece.grid, alone[contest["chosen"]].grid)
    assert contest["critic"] == criticised.critic.fingerprint and "reward_model" not in contest


# -- the commands --------------------------------------------------------------------------
@pytest.mark.slow
def test_critic_train_then_rate_writes_ratings_that_finetune_reads(tiny_checkpoint, encoded_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    runner = CliRunner()
    trained = runner.invoke(cli, ["critic", "train", "--checkpoint", str(folder), "--into", str(folder),
                                  "--out", str(tmp_path / "work"), "--data", str(encoded_dir.parent), "--n", "20",
                                  "--bars", "8", "--styles", "doom,bach", "--steps", "20"])
    assert trained.exit_code == 0, trained.output
    assert "balanced accuracy" in trained.output and (folder / "critic.json").exists()
    assert Generator.load(folder, device="cpu").critic is not None
    # A second run reuses the pieces it composed.
    cached = list((tmp_path / "work").glob("generated-*.npz"))
    assert len(cached) == 1
    out = tmp_path / "critic.jsonl"
    rated = runner.invoke(cli, ["critic", "rate", "--checkpoint", str(folder), "--out", str(out), "--n", "12",
                                "--bars", "8", "--styles", "doom,bach"])
    assert rated.exit_code == 0, rated.output
    records = read_records(out)
    assert len(records) == 8  # a third liked and a third disliked of each style's six; the middle unrated
    assert sorted(r.verdict for r in records) == [-1] * 4 + [1] * 4
    assert {r.style for r in records} == {"doom", "bach"}
    assert all(r.piece().n_bars == 8 for r in records)


def test_rate_without_a_critic_says_how_to_train_one(tiny_checkpoint, tmp_path):
    result = CliRunner().invoke(cli, ["critic", "rate", "--checkpoint", str(tiny_checkpoint),
                                      "--out", str(tmp_path / "r.jsonl"), "--n", "4", "--bars", "8"])
    assert result.exit_code != 0 and "critic train" in str(result.exception)


def test_the_style_head_knows_a_waltz_from_a_march(data):
    """With labels, the critic also learns which label a real window is: held-out pieces of a
    label in 3/4 are judged likelier to be that label than one in 4/4, and the other way round."""
    from tests.conftest import METER

    pieces = fixture_pieces()
    labels = [p.game or p.composer for p in pieces]
    three = sorted({x for x in labels if METER.get(x, (4, 4)) == (3, 4)})
    four = sorted({x for x in labels if METER.get(x, (4, 4)) == (4, 4)})
    assert three and four
    real = [p.grid for p in pieces]
    critic = train_critic(real[::2], data[1][::2], SMALL, real_labels=labels[::2], quiet=True)
    assert set(critic.labels) == set(labels)
    held = list(range(1, len(real), 2))
    as_three = critic.style_scores([real[i] for i in held], [three] * len(held))
    as_four = critic.style_scores([real[i] for i in held], [four] * len(held))
    right = [(a > b) == (labels[i] in three) for i, a, b in zip(held, as_three, as_four)]
    assert np.mean(right) >= 0.8
    assert np.isnan(critic.style_scores(real[:1], [["no-such-label"]])[0])
