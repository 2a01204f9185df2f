"""Preference fine-tuning (KTO) from 👍/👎: both networks of a composer move the right way."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from composer.music import tokens as T
from composer.nn.checkpoint import load_checkpoint, save_checkpoint
from composer.cli.finetune import finetune_command
from composer.feedback.kto import (
    kto_loss,
    kto_weights,
    log_likelihood,
    pseudo_log_likelihood,
    score_windows,
    sequence_log_likelihood,
)
from composer.feedback.rated_windows import crop_windows, rated_batch, rated_windows
from composer.feedback.records import RatedRecord, read_records, write_records
from composer.generate.generator import Generator
from composer.music.grid import Piece
from composer.music.midi_io import to_midi
from composer.nn.model import GridModel, ModelConfig
from composer.nn.train import TrainConfig, loss_and_counts, train
from tests.conftest import synthetic_piece

STYLES = ["dink", "bach", "dink-bach", "no-such-style"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy shared CPU two threads wait on each other (see generator.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def noise_piece(seed: int, bars: int = 8) -> Piece:
    """The disliked kind: a high lead of random short notes over random drums, no bass."""
    rng = np.random.default_rng(seed)
    piece = Piece.empty(bars)
    grid = piece.grid
    grid[:, 0] = [T.onset(int(p)) for p in rng.integers(80, 100, len(grid))]
    grid[:, 4] = rng.integers(0, T.DRUM_VOCAB, len(grid))
    return piece


def record(i: int, piece: Piece, votes: list[int]) -> RatedRecord:
    return RatedRecord(piece_id=i, kind="compose", style=STYLES[i % len(STYLES)], model_version="tiny-1",
                       seed=i, params={"blend": 0.5}, midi=to_midi(piece),
                       ratings={f"rater{k}": v for k, v in enumerate(votes)})


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    records = [record(i, synthetic_piece(56 + i, 8, game="dink"), [1, 1, -1]) for i in range(8)]
    records += [record(100 + i, noise_piece(i), [-1, -1]) for i in range(8)]
    records.append(record(200, synthetic_piece(60, 8), [1, -1]))  # a tie: skipped
    broken = record(201, synthetic_piece(60, 8), [1])
    broken.midi = b"not a midi file"  # unreadable: skipped
    records.append(broken)
    path = tmp_path_factory.mktemp("ratings") / "ratings.jsonl"
    write_records(path, records)
    return path


@pytest.fixture(scope="module")
def composer_dir(tmp_path_factory, tiny_checkpoint, encoded_dir):
    """A tiny v2 folder: the tiny infiller at the top, a tiny draft in draft/, another file."""
    root = tmp_path_factory.mktemp("v2")
    folder = root / "composer"
    shutil.copytree(tiny_checkpoint, folder, ignore=shutil.ignore_patterns("last", "metrics.jsonl"))
    cfg = TrainConfig(data=str(encoded_dir), window_bars=4, batch_size=8, max_steps=30, steps_per_epoch=15,
                      warmup_steps=2, lr=5e-3, val_max_windows=4, seed=0)
    train(cfg, ModelConfig.tiny(arch="td_lstm"), root / "draft_run", quiet=True)
    draft, draft_meta = load_checkpoint(root / "draft_run")
    _, meta = load_checkpoint(folder)
    draft_meta.version = meta.version
    save_checkpoint(folder / "draft", draft, draft_meta)
    (folder / "notes.txt").write_text("kept")  # any other file of the base folder travels with it
    return folder


def mean_shift(base_dir, tuned_dir, ratings_file, network: str) -> dict[int, float]:
    """Mean per-cell log-likelihood change (tuned - base) of the liked (+1) and disliked (-1) pieces."""
    sub = "draft" if network == "draft" else ""
    base, meta = load_checkpoint(base_dir / sub)
    tuned, _ = load_checkpoint(tuned_dir / sub)
    windows, _ = rated_windows(read_records(ratings_file), meta, 64, masks=4, holdout=0.0, seed=0)
    delta = (score_windows(tuned, windows, 4, "cpu") - score_windows(base, windows, 4, "cpu")) / windows.cells
    return {v: float(delta[windows.verdict == v].mean()) for v in (1, -1)}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, composer_dir, ratings_file, encoded_dir):
    out = tmp_path_factory.mktemp("kto") / "tuned"
    result = CliRunner().invoke(finetune_command, [
        "--ratings", str(ratings_file), "--base", str(composer_dir), "--out", str(out), "--data", str(encoded_dir),
        "--steps", "20", "--lr", "3e-3", "--batch-size", "8", "--holdout", "0.25", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_liked_pieces_become_likelier_and_disliked_ones_less_likely(tuned, composer_dir, ratings_file):
    out, report = tuned
    generator = Generator.load(out, device="cpu")
    assert generator.draft is not None  # both networks kept, in the base's layout
    for network in ("infiller", "draft"):
        shift = mean_shift(composer_dir, out, ratings_file, network)
        assert shift[1] > 0 > shift[-1], (network, shift)
    training = generator.meta.training
    for network in ("infiller", "draft"):
        for split in ("train", "heldout"):
            entry = training["shift"][network][split]
            assert entry["liked"] > 0 > entry["disliked"], (network, split, entry)
    assert "liked should rise" in report and "heldout" in report


def test_the_new_checkpoint_records_its_parent_and_ratings(tuned, composer_dir, ratings_file):
    out, _ = tuned
    base_version = json.loads((composer_dir / "config.json").read_text())["version"]
    for folder in (out, out / "draft"):
        config = json.loads((folder / "config.json").read_text())
        assert config["version"] == f"{base_version}-kto1"
        training = config["training"]
        assert training["parent"] == base_version
        assert training["ratings"]["file"] == "ratings.jsonl"
        assert training["ratings"]["sha256"] == hashlib.sha256(ratings_file.read_bytes()).hexdigest()
        assert (training["ratings"]["liked"], training["ratings"]["disliked"]) == (9, 8)  # every record counts
        kto = training["kto"]
        assert kto["beta"] == 0.1 and kto["masks"] == 4 and kto["steps_done"] == 20
        assert kto["pieces"]["skipped"] == {"ties": 1, "unreadable": 1}
        assert kto["pieces"]["heldout"] == {"liked": 2, "disliked": 2}
        assert kto["lambda_desirable"] == kto["lambda_undesirable"] == 1.0  # 6 liked and 6 disliked to train on
        assert str(out.parent.parent) not in (folder / "config.json").read_text()  # no machine paths
        assert all(t.dtype == torch.float16 for t in load_file(str(folder / "model.safetensors")).values())
    assert (out / "originality.npz").exists() and (out / "notes.txt").read_text() == "kept"
    assert not out.with_name(out.name + ".tmp").exists()


def test_a_missing_corpus_is_a_friendly_error_unless_replay_is_off(tmp_path, tiny_checkpoint, ratings_file):
    args = ["--ratings", str(ratings_file), "--base", str(tiny_checkpoint), "--data", str(tmp_path / "nowhere"),
            "--steps", "2", "--device", "cpu"]
    result = CliRunner().invoke(finetune_command, args + ["--out", str(tmp_path / "a")])
    assert result.exit_code != 0 and "--replay 0" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "a").exists()

    result = CliRunner().invoke(finetune_command, args + ["--out", str(tmp_path / "b"), "--replay", "0",
                                                          "--version", "mine"])
    assert result.exit_code == 0, result.output
    generator = Generator.load(tmp_path / "b", device="cpu")  # a v1 base: the infiller alone
    assert generator.draft is None and generator.version == "mine"
    assert generator.meta.training["kto"]["corpus"] is None

    result = CliRunner().invoke(finetune_command, args + ["--out", str(tmp_path / "b"), "--replay", "0"])
    assert result.exit_code != 0 and "--overwrite" in result.output  # an existing folder is not replaced silently


def test_the_likelihoods_are_what_they_claim(tiny_checkpoint, ratings_file):
    torch.manual_seed(0)
    infiller, meta = load_checkpoint(tiny_checkpoint)
    windows, _ = rated_windows(read_records(ratings_file), meta, 64, masks=3, holdout=0.0, seed=0)
    batch = rated_batch(windows, np.arange(4), "cpu")
    tokens, fpb = batch["tokens"], batch["frames_per_bar"]
    game = composer = torch.zeros(4, dtype=torch.long)
    folds = batch["folds"]
    assert sorted(np.bincount(windows.folds[0].ravel())) == [106, 107, 107]  # equal folds
    # Each cell is scored once, with its own fold hidden.
    pll = pseudo_log_likelihood(infiller, tokens, folds, 3, game, composer, fpb)
    hidden = torch.where(folds == 1, GridModel.mask_ids(), tokens)
    logits = infiller(hidden, game, composer, fpb)
    one = torch.log_softmax(logits[0], -1).gather(-1, tokens[..., :1]).squeeze(-1)
    assert torch.allclose(pll[..., 0][folds[..., 0] == 1], one[folds[..., 0] == 1], atol=1e-5)
    # The draft's sequence log-likelihood is minus its training loss on the same windows.
    draft = GridModel(ModelConfig.tiny(arch="td_lstm", n_games=meta.model.n_games,
                                       n_composers=meta.model.n_composers)).eval()
    seq = sequence_log_likelihood(draft, tokens, game, composer, fpb)
    inputs = {"inputs": tokens, "targets": tokens, "weights": torch.ones(tokens.shape), "game": game,
              "composer": composer, "frames_per_bar": fpb}
    loss, _, _ = loss_and_counts(draft, inputs)
    assert torch.isclose(-seq.mean(), loss, atol=1e-5)
    # A blend is scored as the product of experts: two label rows for one window.
    blends = [i for i in range(len(windows)) if len(windows.conditions[i]) == 2]
    assert blends and len(log_likelihood(infiller, rated_batch(windows, np.array(blends[:2]), "cpu"), 3)) == 2


def test_windows_weights_and_loss():
    grid = np.zeros((32 * 16, T.N_VOICES), np.uint8)
    assert [len(w) for w in crop_windows(grid, 16, 256)] == [256, 256]
    assert [len(w) for w in crop_windows(grid[: 20 * 16], 16, 256)] == [160, 160]
    assert [len(w) for w in crop_windows(np.zeros((9 * 12, 5), np.uint8), 12, 256)] == [108]  # 3/4 fits whole
    for n_d, n_u in ((10, 10), (1, 10), (10, 1), (13, 10), (40, 10)):
        lambda_d, lambda_u = kto_weights(n_d, n_u)
        assert 1 <= lambda_d * n_d / (lambda_u * n_u) <= 4 / 3 + 1e-9 and max(lambda_d, lambda_u) >= 1
    reward = torch.tensor([2.0, -1.0, 0.5, -3.0], requires_grad=True)
    desirable = torch.tensor([True, False, True, False])
    loss, z_ref = kto_loss(reward, desirable, 0.1, 1.0, 1.0)
    assert z_ref == 0  # the batch mean is negative: the KL estimate is clamped at 0
    loss.backward()
    assert (reward.grad[desirable] < 0).all() and (reward.grad[~desirable] > 0).all()  # liked up, disliked down
