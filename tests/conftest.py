"""Shared fixtures: a tiny encoded corpus and a tiny checkpoint, made in seconds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from composer import tokens as T

GAMES = ["dink", "doom"]
COMPOSERS = ["bach", "mozart"]


def synthetic_piece(rng: np.random.Generator, bars: int, fpb: int = 16, drums: bool = True) -> np.ndarray:
    """A small, learnable piece: a repeating arpeggio over a bass line with a beat."""
    grid = np.zeros((bars * fpb, T.N_VOICES), np.uint8)
    root = int(rng.integers(55, 67))
    pattern = [0, 4, 7, 12]
    for f in range(0, bars * fpb, 2):
        grid[f, 0] = T.onset(root + pattern[(f // 2) % 4])
        grid[f + 1, 0] = T.HOLD
    for f in range(0, bars * fpb, fpb):
        grid[f, 3] = T.onset(root - 24)
        grid[f + 1 : f + fpb, 3] = T.HOLD
        grid[f, 1] = T.onset(root + 4)
        grid[f + 1 : f + fpb // 2, 1] = T.HOLD
    if drums:
        grid[::4, 4] = T.drum_token("kick")
        grid[2::4, 4] = T.drum_token("hat")
    return grid


def write_encoded(folder, n_pieces: int = 12, bars: int = 8, seed: int = 0) -> None:
    """An encoded corpus in the format `corpus encode` writes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_pieces), ("valid", 4), ("test", 4)):
        grids, game, composer = [], [], []
        for i in range(n):
            is_game = i % 2 == 0
            grids.append(synthetic_piece(rng, bars, drums=is_game))
            game.append(i % 4 // 2 if is_game else -1)
            composer.append(-1 if is_game else i % 4 // 2)
        np.savez(
            folder / f"{split}.npz",
            grid=np.concatenate(grids),
            offsets=np.cumsum([0] + [len(g) for g in grids]),
            game=np.array(game, np.int16),
            composer=np.array(composer, np.int16),
            frames_per_bar=np.full(n, 16, np.int16),
            ids=np.array([f"{split}/{i}" for i in range(n)]),
        )
    (folder / "meta.json").write_text(json.dumps({"format_version": 1, "games": GAMES, "composers": COMPOSERS,
                                                   "manifest_hash": "synthetic"}))


@pytest.fixture(scope="session")
def encoded_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoded")
    write_encoded(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, encoded_dir):
    """A tiny td_bilstm trained for a few steps on the synthetic corpus."""
    from composer.model import ModelConfig
    from composer.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    cfg = TrainConfig(data=str(encoded_dir), window_bars=4, batch_size=8, max_steps=30, steps_per_epoch=15,
                      warmup_steps=5, lr=5e-3, val_max_windows=8, seed=0)
    train(cfg, ModelConfig.tiny(), out, quiet=True)
    return out


@pytest.fixture(scope="session")
def generator(tiny_checkpoint):
    from composer.generator import Generator

    return Generator.load(tiny_checkpoint, device="cpu")
