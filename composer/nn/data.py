"""Training batches: random windows of the encoded corpus, transposed and masked.

The encoded corpus (``python -m composer corpus encode``, read with
``composer.corpus.encoded.load_split``) is a few flat arrays per split, so a batch costs a
handful of NumPy slices: no per-step file I/O, no music parsing.
"""

from __future__ import annotations

import numpy as np
import torch

from composer.music import tokens as T
from composer.corpus.encoded import EncodedSplit
from composer.music.grid import drop_leading_holds

PITCHED = slice(0, T.DRUM_VOICE)


def transpose_window(window: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift the pitched voices by a random amount that keeps every pitch in range."""
    pitched = window[:, PITCHED]
    onsets = pitched >= T.PITCH_OFFSET
    if max_shift <= 0 or not onsets.any():
        return window
    lo = max(-max_shift, T.PITCH_OFFSET - int(pitched[onsets].min()))
    hi = min(max_shift, T.PITCHED_VOCAB - 1 - int(pitched[onsets].max()))
    if lo > hi:
        return window
    shift = int(rng.integers(lo, hi + 1))
    pitched[onsets] = (pitched[onsets].astype(np.int16) + shift).astype(np.uint8)
    return window


class WindowSampler:
    """Random training windows, balanced across style labels.

    A label's share of the batches grows with the square root of its size, so the Bach
    chorales do not drown a game with ten tracks (nor does the small game get repeated
    until it is memorised).
    """

    def __init__(self, split: EncodedSplit, window_frames: int, max_shift: int = 6, balance: float = 0.5, seed: int = 0):
        self.split = split
        self.window = window_frames
        self.max_shift = max_shift
        self.rng = np.random.default_rng(seed)
        lengths = split.lengths.astype(np.float64)
        label = np.where(split.game >= 0, split.game, 1000 + split.composer)
        weights = np.zeros(len(split))
        for value in np.unique(label):
            members = label == value
            total = lengths[members].sum()
            weights[members] = lengths[members] / total * total**balance
        self.weights = weights / weights.sum()

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        s, W = self.split, self.window
        tokens = np.zeros((batch_size, W, T.N_VOICES), np.uint8)
        valid = np.zeros((batch_size, W), bool)
        pieces = self.rng.choice(len(s), size=batch_size, p=self.weights)
        for b, i in enumerate(pieces):
            grid = s.piece_grid(i)
            fpb = int(s.frames_per_bar[i])
            n_bars = max(1, len(grid) // fpb)
            bars_in_window = max(1, W // fpb)
            start = int(self.rng.integers(0, max(1, n_bars - bars_in_window + 1))) * fpb
            window = grid[start : start + W].copy()
            drop_leading_holds(window)
            tokens[b, : len(window)] = transpose_window(window, self.max_shift, self.rng)
            valid[b, : len(window)] = True
        return {
            "tokens": tokens,
            "valid": valid,
            "game": s.game[pieces],
            "composer": s.composer[pieces],
            "frames_per_bar": s.frames_per_bar[pieces],
        }


# --- masking ------------------------------------------------------------------------------
# Each training example gets one of these ways of hiding cells (Coconet's orderless
# masking, plus shapes that match how generation uses the model).
MASK_KINDS = ("random", "future", "voices", "bars", "all")
MASK_PROBS = (0.45, 0.2, 0.15, 0.12, 0.08)


def make_mask(batch: int, frames: int, frames_per_bar: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, T, 5) bool: True = hidden (the model must predict it)."""
    hidden = np.zeros((batch, frames, T.N_VOICES), bool)
    kinds = rng.choice(len(MASK_KINDS), size=batch, p=MASK_PROBS)
    for b, kind in enumerate(kinds):
        kind = MASK_KINDS[kind]
        if kind == "random":
            hidden[b] = rng.random((frames, T.N_VOICES)) < rng.uniform(0.05, 1.0)
        elif kind == "future":
            cut = int(rng.integers(frames // 8, frames))
            hidden[b] = rng.random((frames, T.N_VOICES)) < rng.uniform(0.0, 0.4)
            hidden[b, cut:] = True
        elif kind == "voices":
            voices = rng.random(T.N_VOICES) < 0.5
            if not voices.any() or voices.all():
                voices[rng.integers(T.N_VOICES)] = not voices.all()
            hidden[b] = rng.random((frames, T.N_VOICES)) < rng.uniform(0.0, 0.3)
            hidden[b, :, voices] = True
        elif kind == "bars":
            fpb = int(frames_per_bar[b])
            n_bars = max(1, frames // fpb)
            length = int(rng.integers(1, max(2, n_bars // 2 + 1)))
            start = int(rng.integers(0, max(1, n_bars - length + 1)))
            hidden[b] = rng.random((frames, T.N_VOICES)) < rng.uniform(0.0, 0.2)
            hidden[b, start * fpb : (start + length) * fpb] = True
        else:
            hidden[b] = True
    return hidden


def to_model_inputs(batch: dict[str, np.ndarray], hidden: np.ndarray | None, n_games: int, n_composers: int,
                    style_dropout: float, rng: np.random.Generator, device) -> dict[str, torch.Tensor]:
    """Tensors for ``GridModel.forward`` and the loss: hidden cells become MASK in the input.

    ``hidden=None`` is for the causal ``lstm`` model, which shifts its input by one frame
    itself: it gets the true tokens and is scored on every cell."""
    targets = torch.from_numpy(batch["tokens"].astype(np.int64))
    if hidden is None:  # the causal next-frame model: it sees the true past, every cell is scored
        masked = torch.ones(targets.shape, dtype=torch.bool)
        inputs = targets
    else:
        masked = torch.from_numpy(hidden)
        inputs = torch.where(masked, torch.tensor(T.VOCAB_SIZES), targets)
    game = batch["game"].astype(np.int64)
    composer = batch["composer"].astype(np.int64)
    game = np.where((game < 0) | (rng.random(len(game)) < style_dropout), n_games, game)
    composer = np.where((composer < 0) | (rng.random(len(composer)) < style_dropout), n_composers, composer)
    weights = masked & torch.from_numpy(batch["valid"])[..., None]
    return {
        "inputs": inputs.to(device),
        "targets": targets.to(device),
        "weights": weights.float().to(device),
        "game": torch.from_numpy(game).to(device),
        "composer": torch.from_numpy(composer).to(device),
        "frames_per_bar": torch.from_numpy(batch["frames_per_bar"].astype(np.int64)).to(device),
    }


def validation_windows(split: EncodedSplit, window_frames: int):
    """Every piece cut into consecutive windows starting on bar lines (deterministic)."""
    for i in range(len(split)):
        grid = split.piece_grid(i)
        fpb = int(split.frames_per_bar[i])
        step = max(fpb, window_frames // fpb * fpb)
        for start in range(0, len(grid), step):
            window = grid[start : start + step].copy()
            drop_leading_holds(window)
            yield i, window
