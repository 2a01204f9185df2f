"""The reward model (P(👍) from a piece's statistics and style) and best_of, which composes
several candidates and keeps the one it rates best."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from composer.music import tokens as T
from composer.nn.folder import REWARD
from composer.errors import GenerationParameterError, MozartError
from composer.cli.ratings import ratings
from composer.feedback.records import RatedRecord, write_records
from composer.feedback.reward_fitting import evaluate_reward
from composer.judge.features import FEATURES, NEUTRAL, piece_features
from composer.judge.reward import RewardError, RewardModel, style_labels
from composer.generate.generator import Generator, candidate_seeds
from composer.music.grid import Piece
from composer.music.midi_io import to_midi
from composer.generate.request import GenerationRequest
from tests.conftest import synthetic_piece

STYLES = ["doom-bach", "dink-mozart", "bach", "doom"]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def rated_records(n_pieces: int = 80, seed: int = 0) -> list[RatedRecord]:
    """Synthetic pieces whose lead is thinned by a random share; simulated raters like a
    denser lead: P(👍) = sigmoid(8 (kept share - 0.55)), each piece rated by 2-5 raters."""
    rng = np.random.default_rng(seed)
    lead = T.VOICE_INDEX["lead"]
    records = []
    for i in range(n_pieces):
        piece = synthetic_piece(int(rng.integers(52, 64)), 8)
        kept = float(rng.uniform(0.1, 1.0))
        onsets = np.flatnonzero(piece.grid[:, lead] >= T.PITCH_OFFSET)
        for f in onsets[rng.random(len(onsets)) > kept]:
            piece.grid[f : f + 2, lead] = T.REST  # the note and its hold
        votes = {f"rater{k}": (1 if rng.random() < _sigmoid(8 * (kept - 0.55)) else -1)
                 for k in rng.choice(12, size=int(rng.integers(2, 6)), replace=False)}
        records.append(RatedRecord(piece_id=i + 1, kind="compose", style=STYLES[i % len(STYLES)],
                                   model_version="test", seed=i, params={"bars": 8}, midi=to_midi(piece),
                                   ratings=votes))
    return records


@pytest.fixture(scope="module")
def records():
    return rated_records()


@pytest.fixture(scope="module")
def reward(records, generator):
    return evaluate_reward(records, holdout=0.25, seed=0, catalog=generator.catalog)


@pytest.fixture(scope="module")
def judged(tiny_checkpoint, reward, tmp_path_factory):
    """The tiny checkpoint with a reward model beside it, loaded as the bot would."""
    folder = tmp_path_factory.mktemp("judged") / "tiny"
    shutil.copytree(tiny_checkpoint, folder)
    reward.save(folder / REWARD)
    return Generator.load(folder, device="cpu")


# -- features ------------------------------------------------------------------------------
def test_features_are_finite_named_and_neutral_where_undefined():
    full = piece_features(synthetic_piece(60, 16))
    assert list(full) == list(FEATURES)
    assert all(math.isfinite(v) for v in full.values())
    assert full["has_theme_return"] == 1.0 and full["theme_return"] == 1.0  # the arpeggio repeats exactly
    empty = piece_features(Piece.empty(2))
    assert all(math.isfinite(v) for v in empty.values())
    assert empty["has_theme_return"] == 0.0 and empty["theme_return"] == NEUTRAL["theme_return"]
    assert empty["pitch_range"] == NEUTRAL["pitch_range"] and empty["note_density"] == 0.0


def test_features_of_a_stored_piece_are_those_of_the_piece_composed(generator, records):
    """The reward model learns from exported MIDI and judges freshly composed pieces: same numbers."""
    piece = generator.generate(GenerationRequest(style="doom-bach", bars=8, seed=5, steps=4))
    stored = RatedRecord(1, "compose", "doom-bach", "test", 5, piece.extra["params"], to_midi(piece), {}).piece()
    assert piece_features(stored) == pytest.approx(piece_features(piece))


# -- the model -----------------------------------------------------------------------------
def test_style_labels_from_names_aliases_and_a_catalog():
    assert style_labels("zelda-bach") == ("zelda", "bach")
    assert style_labels("zelda-bach", aliases={"zelda": "dink"}) == ("dink", "bach")
    assert style_labels("bach-doom", games=["doom"], composers=["bach"]) == ("doom", "bach")
    assert style_labels("bach", games=["doom"], composers=["bach"]) == (None, "bach")
    assert style_labels("doom") == ("doom", None)


def test_held_out_accuracy_beats_the_majority_vote(reward, records):
    s = reward.summary
    assert s.ratings == sum(len(r.ratings) for r in records)
    assert s.pieces == len({r.midi for r in records})  # two records of the same music are one piece
    assert s.heldout_pieces == 20 and 0 < s.heldout_ratings < s.ratings
    assert s.heldout_accuracy > s.baseline_accuracy + 0.05, s
    assert s.heldout_log_loss < s.baseline_log_loss
    # What the raters reward (a denser lead) is what the model learnt: note density pushes up.
    weights = dict(zip(reward.columns, reward.weights))
    assert weights["note_density"] > 0
    assert reward.games == ["dink", "doom"] and reward.composers == ["bach", "mozart"]


def test_a_piece_never_straddles_the_split():
    """The same music under two records (a change of sound) counts as one piece."""
    base = rated_records(30, seed=1)
    twins = [RatedRecord(100 + r.piece_id, "resound", r.style, r.model_version, r.seed, r.params, r.midi,
                         {"other": 1}) for r in base[:10]]
    model = evaluate_reward(base + twins, holdout=0.3, seed=2)
    pieces = len({r.midi for r in base})
    assert model.summary.pieces == pieces and model.summary.heldout_pieces == round(0.3 * pieces)


def test_save_and_load_give_the_same_predictions(reward, records, tmp_path):
    path = reward.save(tmp_path / "reward.json")
    loaded = RewardModel.load(path)
    data = json.loads(path.read_text())
    assert data["features"] == list(FEATURES) and data["summary"]["heldout_accuracy"] == reward.summary.heldout_accuracy
    assert set(data["scaler"]) == {"mean", "std"} and data["summary"]["seed"] == 0
    for record in records[:8]:
        piece = record.piece()
        assert loaded.predict(piece, record.style) == reward.predict(piece, record.style)
        assert 0 < reward.predict(piece) < 1  # the style the piece records
    assert loaded.fingerprint == reward.fingerprint
    path.write_text("{}")
    with pytest.raises(RewardError, match="Not a Mozart reward model"):
        RewardModel.load(path)


def test_too_few_ratings_or_only_one_answer_are_refused(records):
    with pytest.raises(RewardError, match="at least 10"):
        evaluate_reward(records[:2])
    liked = [RatedRecord(r.piece_id, r.kind, r.style, r.model_version, r.seed, r.params, r.midi,
                         {k: 1 for k in r.ratings}) for r in records[:20]]
    with pytest.raises(RewardError, match="nothing to tell"):
        evaluate_reward(liked)


# -- best_of -------------------------------------------------------------------------------
BEST_OF = GenerationRequest(style="doom-bach", bars=4, time_signature="4/4", tempo=120, key="C major", seed=11,
                            steps=4, form="through", best_of=4)


def test_best_of_keeps_the_candidate_the_reward_model_rates_best(judged):
    piece = judged.generate(BEST_OF)
    contest = piece.extra["best_of"]
    seeds = candidate_seeds(11, 4)
    assert contest["seeds"] == seeds and seeds[0] == 11 and len(set(seeds)) == 4
    # Each candidate composed on its own (batching does not change a piece) and scored.
    alone = [judged.generate(BEST_OF.replace(seed=s, best_of=1)) for s in seeds]
    scores = [judged.reward.predict(p, "doom-bach") for p in alone]
    assert contest["scores"] == pytest.approx(scores, abs=1e-6)
    assert contest["chosen"] == int(np.argmax(scores))
    assert np.array_equal(piece.grid, alone[contest["chosen"]].grid)
    assert len({p.grid.tobytes() for p in alone}) > 1
    assert contest["reward_model"] == judged.reward.fingerprint
    # The piece keeps the request's seed and parameters: that is what replays it.
    assert piece.extra["seed"] == 11 and piece.extra["params"]["seed"] == 11
    assert piece.extra["params"]["best_of"] == 4 and piece.title.endswith("#11")


def test_best_of_is_deterministic_and_replays_from_its_stored_parameters(judged):
    a, b = judged.generate_many([BEST_OF, BEST_OF.replace(best_of=1), BEST_OF])[::2]
    assert np.array_equal(a.grid, b.grid) and a.extra == b.extra
    replayed = judged.generate(GenerationRequest.from_params(json.loads(json.dumps(a.extra["params"]))))
    assert to_midi(replayed) == to_midi(a)
    # Without best_of the request is the first candidate, exactly as before.
    plain = judged.generate(BEST_OF.replace(best_of=1))
    assert "best_of" not in plain.extra
    assert np.array_equal(plain.grid, judged.generate(BEST_OF.replace(seed=candidate_seeds(11, 4)[0], best_of=1)).grid)


def test_best_of_without_a_reward_model_says_how_to_train_one(generator):
    assert generator.reward is None
    with pytest.raises(GenerationParameterError, match="ratings reward"):
        generator.prepare(BEST_OF)
    generator.generate(BEST_OF.replace(best_of=1, bars=1))
    with pytest.raises(GenerationParameterError, match="best_of must be between 1 and 8"):
        generator.prepare(BEST_OF.replace(best_of=9))


# -- the command ---------------------------------------------------------------------------
def test_the_reward_command_writes_the_model_and_copies_it_into_a_checkpoint(records, tiny_checkpoint, tmp_path):
    file = tmp_path / "ratings.jsonl"
    write_records(file, records)
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    out = tmp_path / "reward.json"
    result = CliRunner().invoke(ratings, ["reward", "--ratings", str(file), "--out", str(out), "--into", str(folder),
                                          "--holdout", "0.25"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "majority vote" in result.output and "held-out accuracy" in result.output
    model = RewardModel.load(out)
    assert (folder / REWARD).read_bytes() == out.read_bytes()
    assert model.games == ["dink", "doom"]  # the labels of the --into checkpoint
    assert model.summary.ratings_sha256 and model.summary.heldout_accuracy > model.summary.baseline_accuracy
    assert Generator.load(folder, device="cpu").reward.fingerprint == model.fingerprint


def test_the_reward_command_fails_with_a_message(records, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(ratings, ["reward", "--ratings", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r.json")])
    assert isinstance(missing.exception, MozartError) and "ratings export" in str(missing.exception)
    few = tmp_path / "few.jsonl"
    write_records(few, records[:2])
    refused = runner.invoke(ratings, ["reward", "--ratings", str(few), "--out", str(tmp_path / "r.json")])
    assert isinstance(refused.exception, RewardError) and "at least 10" in str(refused.exception)
    assert not (tmp_path / "r.json").exists()
    not_a_model = runner.invoke(ratings, ["reward", "--ratings", str(few), "--out", str(tmp_path / "r.json"),
                                          "--into", str(tmp_path)])
    assert isinstance(not_a_model.exception, RewardError) and "No Mozart checkpoint" in str(not_a_model.exception)
