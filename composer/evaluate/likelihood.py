"""Likelihood on held-out music: masked-cell NLL, continuation NLL, and an n-gram baseline.

Two questions, both in nats per cell (lower is better):

* **masked-cell NLL** — hide a random share ``rate`` of the cells of a window and score the
  hidden ones given the rest (what the infilling model is trained for). Every model sees
  the same windows and the same masks (seeded). The causal ``lstm`` cannot condition on
  the future, so for it this figure is undefined (``nan``).
* **continuation NLL** — p(frame t | frames < t): the whole future is hidden. For the
  bidirectional models every cell at frames >= t is MASK and frame t is scored; the causal
  ``lstm`` predicts frame t from the frames before it, as it always does. Same positions,
  same context (a bar-aligned window of up to ``context_frames`` frames) for every model,
  so this is the figure that compares all architectures and the baselines.

The baseline is a per-voice n-gram over frames (``NGramBaseline``) with Witten–Bell
interpolated smoothing, fit on the train split. It scores continuation exactly like the
models, and masked cells from the observed cells just before them in the same voice
(backing off past a hidden cell); it never sees the future or the other voices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from composer.music import tokens as T
from composer.corpus.encoded import EncodedSplit
from composer.nn.data import validation_windows
from composer.music.grid import drop_leading_holds
from composer.nn.model import GridModel, cell_nll

__all__ = [
    "EvalSet",
    "masked_windows",
    "continuation_set",
    "random_mask",
    "label_map",
    "model_masked_nll",
    "model_continuation_nll",
    "NGramBaseline",
    "ngram_masked_nll",
    "ngram_continuation_nll",
    "ngram_select_order",
    "MASK_RATES",
]

MASK_RATES = (0.25, 0.5, 0.75, 1.0)
WINDOW_FRAMES = 256  # 16 bars of 4/4, the training window
CONTEXT_FRAMES = 192  # continuation: up to 12 bars of 4/4 before the scored frame


@dataclass
class EvalSet:
    """Fixed windows of one split, shared by every model scored on it."""

    tokens: np.ndarray  # (N, W, 5) uint8 true tokens (padding: rest)
    valid: np.ndarray  # (N, W) bool, False past the piece's end
    game: np.ndarray  # (N,) label index in the data's game list, -1 = none
    composer: np.ndarray  # (N,) likewise for composers
    frames_per_bar: np.ndarray  # (N,)
    start: np.ndarray  # (N,) first frame of the window in its piece (0 = the piece's start)
    piece: np.ndarray  # (N,) piece index in the split
    target: np.ndarray | None = None  # (N,) the scored frame (continuation sets)

    def __len__(self) -> int:
        return len(self.tokens)


def _stack(items, W):
    tokens = np.zeros((len(items), W, T.N_VOICES), np.uint8)
    valid = np.zeros((len(items), W), bool)
    for b, window in enumerate(items):
        tokens[b, : len(window)] = window
        valid[b, : len(window)] = True
    return tokens, valid


def masked_windows(split: EncodedSplit, window_frames: int = WINDOW_FRAMES, max_windows: int | None = 256,
                   seed: int = 0) -> EvalSet:
    """Consecutive bar-aligned windows of every piece (as in validation), then a seeded
    random subset of ``max_windows`` of them (all when None)."""
    items, pieces, starts = [], [], []
    last_piece, position = -1, 0
    for i, window in validation_windows(split, window_frames):
        position = position + len(items[-1]) if i == last_piece else 0
        items.append(window)
        pieces.append(i)
        starts.append(position)
        last_piece = i
    order = np.arange(len(items))
    if max_windows is not None and len(items) > max_windows:
        order = np.sort(np.random.default_rng(seed).choice(len(items), max_windows, replace=False))
    tokens, valid = _stack([items[k] for k in order], window_frames)
    pieces = np.array(pieces, np.int64)[order]
    return EvalSet(tokens, valid, split.game[pieces].astype(np.int64), split.composer[pieces].astype(np.int64),
                   split.frames_per_bar[pieces].astype(np.int64), np.array(starts, np.int64)[order], pieces)


def continuation_set(split: EncodedSplit, n_positions: int = 512, context_frames: int = CONTEXT_FRAMES,
                     window_frames: int = WINDOW_FRAMES, seed: int = 0) -> EvalSet:
    """``n_positions`` frames t drawn uniformly (seeded) from all frames after each piece's
    first bar; each with a bar-aligned window starting at most ``context_frames`` before t."""
    if context_frames >= window_frames:
        raise ValueError(f"context_frames must be < window_frames (received {context_frames}, {window_frames})")
    lengths = np.diff(split.offsets)
    fpb = split.frames_per_bar.astype(np.int64)
    eligible = np.maximum(0, lengths - fpb)  # frames fpb..len-1 of each piece
    total = int(eligible.sum())
    if total == 0:
        raise ValueError("no piece is longer than one bar")
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(total, size=min(n_positions, total), replace=False))
    cum = np.concatenate([[0], np.cumsum(eligible)])
    pieces = np.searchsorted(cum, flat, side="right") - 1
    t = flat - cum[pieces] + fpb[pieces]
    starts = np.maximum(0, -(-(t - context_frames) // fpb[pieces]) * fpb[pieces])
    items = []
    for i, s in zip(pieces, starts):
        window = split.piece_grid(int(i))[s : s + window_frames].copy()
        drop_leading_holds(window)
        items.append(window)
    tokens, valid = _stack(items, window_frames)
    return EvalSet(tokens, valid, split.game[pieces].astype(np.int64), split.composer[pieces].astype(np.int64),
                   fpb[pieces], starts.astype(np.int64), pieces.astype(np.int64), (t - starts).astype(np.int64))


def random_mask(evalset: EvalSet, rate: float, seed: int = 0) -> np.ndarray:
    """(N, W, 5) bool: each valid cell hidden with probability ``rate`` (seeded by rate, so
    every model and baseline is scored on the same cells)."""
    rng = np.random.default_rng([seed, int(round(rate * 1000))])
    return (rng.random(evalset.tokens.shape) < rate) & evalset.valid[..., None]


def label_map(data_labels: list[str], model_labels: list[str]) -> np.ndarray:
    """Data label index -> model label index (by name); unknown and -1 -> the model's "none"."""
    none = len(model_labels)
    table = np.array([model_labels.index(x) if x in model_labels else none for x in data_labels] + [none], np.int64)
    return table  # index -1 picks the last entry: none


# -- neural models ---------------------------------------------------------------------
@torch.no_grad()
def _score(model: GridModel, evalset: EvalSet, hidden: np.ndarray, scored: np.ndarray, games: np.ndarray,
           composers: np.ndarray, batch_size: int, device, progress=None) -> dict:
    """Sum NLL per voice over ``scored`` cells with ``hidden`` cells given as MASK."""
    model.eval()
    mask_ids = GridModel.mask_ids()
    sums = torch.zeros(T.N_VOICES, dtype=torch.float64)
    counts = torch.zeros(T.N_VOICES, dtype=torch.float64)
    for lo in range(0, len(evalset), batch_size):
        sl = slice(lo, lo + batch_size)
        targets = torch.from_numpy(evalset.tokens[sl].astype(np.int64))
        inputs = targets if model.config.causal else torch.where(torch.from_numpy(hidden[sl]), mask_ids, targets)
        weights = torch.from_numpy(scored[sl]).float()
        logits = model(inputs.to(device), torch.from_numpy(games[evalset.game[sl]]).to(device),
                       torch.from_numpy(composers[evalset.composer[sl]]).to(device),
                       torch.from_numpy(evalset.frames_per_bar[sl]).to(device))
        sums += cell_nll(logits, targets.to(device), weights.to(device)).double().cpu()
        counts += weights.sum((0, 1)).double()
        if progress:
            progress(min(len(evalset), lo + batch_size) - lo)
    return _summary(sums.numpy(), counts.numpy())


def _summary(sums: np.ndarray, counts: np.ndarray) -> dict:
    per_voice = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    total = counts.sum()
    return {
        "nll": float(sums.sum() / total) if total else math.nan,  # nats per scored cell
        "frame_nll": float(np.nansum(per_voice)),  # sum of the per-voice means: nats per frame
        "per_voice": {v: float(x) for v, x in zip(T.VOICES, per_voice)},
        "cells": int(total),
    }


def _undefined(reason: str) -> dict:
    return {"nll": math.nan, "frame_nll": math.nan, "per_voice": {v: math.nan for v in T.VOICES}, "cells": 0,
            "note": reason}


def model_masked_nll(model: GridModel, evalset: EvalSet, games: np.ndarray, composers: np.ndarray,
                     rates=MASK_RATES, seed: int = 0, batch_size: int = 16, device="cpu", progress=None) -> dict:
    """Masked-cell NLL per voice at each mask rate: {rate: summary}. ``games``/``composers``
    are ``label_map`` tables. Undefined (NaN, with a note) for the causal ``lstm``."""
    out = {}
    for rate in rates:
        if model.config.causal:
            out[str(rate)] = _undefined("causal model: it cannot see the cells after a hidden one")
            continue
        hidden = random_mask(evalset, rate, seed)
        out[str(rate)] = _score(model, evalset, hidden, hidden, games, composers, batch_size, device, progress)
    return out


def _future_hidden(evalset: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    W = evalset.tokens.shape[1]
    frames = np.arange(W)[None, :]
    hidden = np.repeat((frames >= evalset.target[:, None])[..., None], T.N_VOICES, -1)
    scored = np.repeat((frames == evalset.target[:, None])[..., None], T.N_VOICES, -1) & evalset.valid[..., None]
    return hidden, scored


def model_continuation_nll(model: GridModel, cset: EvalSet, games: np.ndarray, composers: np.ndarray,
                           batch_size: int = 32, device="cpu", progress=None) -> dict:
    """Continuation NLL: p(frame t | frames < t) at the positions of ``cset``."""
    hidden, scored = _future_hidden(cset)
    return _score(model, cset, hidden, scored, games, composers, batch_size, device, progress)


# -- the n-gram baseline ---------------------------------------------------------------
class NGramBaseline:
    """Per-voice n-gram over frames: p(x_t | x_{t-1}, ..., x_{t-n+1}) of one voice's tokens,
    with Witten–Bell interpolation down to an add-one unigram:

        P_k(x | h) = (c(h, x) + N1+(h .) P_{k-1}(x | h')) / (c(h) + N1+(h .)),

    where h' drops the oldest token and N1+(h .) counts the distinct tokens seen after h
    (Witten & Bell 1991; Chen & Goodman, "An empirical study of smoothing techniques for
    language modeling", 1999). A context longer than what is observed (a hidden cell, or
    the frames before a window that does not start the piece) backs off to the longest
    observed suffix. The start of a piece is a BOS symbol."""

    def __init__(self, order: int, tables: list[list[dict]], unigrams: list[np.ndarray]):
        self.order = order  # n: contexts of n-1 previous tokens
        self.tables = tables  # [voice][k-1] for k = 1..max order-1: sorted keys and counts
        self.unigrams = unigrams  # [voice] (V,) counts

    @classmethod
    def fit(cls, split: EncodedSplit, order: int = 3, shifts=(0,)) -> NGramBaseline:
        """Count every context of up to ``order - 1`` tokens in ``split`` (train). With
        ``shifts`` the pitched voices are also counted transposed by each shift (pieces whose
        notes would leave the range skip that shift), as the neural models are trained."""
        if order < 1:
            raise ValueError(f"order must be >= 1 (received {order})")
        n_frames = int(split.offsets[-1])
        lengths = np.diff(split.offsets)
        piece_of = np.repeat(np.arange(len(split)), lengths)
        position = np.arange(n_frames) - split.offsets[piece_of]
        starts = split.offsets[:-1][lengths > 0]
        tables, unigrams = [], []
        for v, V in enumerate(T.VOCAB_SIZES):
            column = split.grid[:, v].astype(np.int64)
            versions = []  # (transposed column, frames that may use it)
            for shift in (shifts if v < T.DRUM_VOICE else (0,)):
                if shift == 0:
                    versions.append((column, None))
                    continue
                onset = column >= T.PITCH_OFFSET
                low = np.full(len(split), V, np.int64)
                high = np.full(len(split), -1, np.int64)
                low[lengths > 0] = np.minimum.reduceat(np.where(onset, column, V), starts)
                high[lengths > 0] = np.maximum.reduceat(np.where(onset, column, -1), starts)
                fits = (high < 0) | ((low + shift >= T.PITCH_OFFSET) & (high + shift < V))
                versions.append((np.where(onset, column + shift, column), fits[piece_of]))
            unigrams.append(sum(np.bincount(c if ok is None else c[ok], minlength=V) for c, ok in versions)
                            .astype(np.float64))
            levels = []
            for k in range(1, order):
                joint = []
                for c, ok in versions:
                    key = cls._key(cls._train_history(c, position, k, V), V) * V + c
                    joint.append(key if ok is None else key[ok])
                joint_keys, joint_counts = np.unique(np.concatenate(joint), return_counts=True)
                ctx_keys, inverse, types = np.unique(joint_keys // V, return_inverse=True, return_counts=True)
                c_h = np.bincount(inverse, weights=joint_counts, minlength=len(ctx_keys))
                levels.append({"ctx": ctx_keys, "c_h": c_h.astype(np.float64), "types": types.astype(np.float64),
                               "joint": joint_keys, "c_hx": joint_counts.astype(np.float64)})
            tables.append(levels)
        return cls(order, tables, unigrams)

    def with_order(self, order: int) -> NGramBaseline:
        """The same counts used as a lower-order model (for choosing the order on valid)."""
        if not 1 <= order <= self.order:
            raise ValueError(f"order must be in 1..{self.order} (received {order})")
        return NGramBaseline(order, [levels[: order - 1] for levels in self.tables], self.unigrams)

    @staticmethod
    def _train_history(column, position, k, V) -> np.ndarray:
        history = np.full((len(column), k), V, np.int64)  # V = BOS
        for j in range(k):
            back = j + 1
            ok = position >= back
            history[back:, j] = np.where(ok[back:], column[:-back], V)
            history[:back, j] = V
        return history

    @staticmethod
    def _key(history: np.ndarray, V: int) -> np.ndarray:
        """Context tokens (most recent first, BOS = V) -> one int64 key."""
        key = np.zeros(len(history), np.int64)
        for j in range(history.shape[1] - 1, -1, -1):
            key = key * (V + 1) + history[:, j]
        return key

    @staticmethod
    def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
        if len(keys) == 0:
            return np.zeros(len(query))
        i = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where(keys[i] == query, values[i], 0.0)

    def log_prob(self, voice: int, history: np.ndarray, target: np.ndarray) -> np.ndarray:
        """ln p(target | history) for one voice. ``history``: (N, >= order-1) previous tokens,
        most recent first; V = BOS (start of the piece), -1 = unknown (hidden or unseen)."""
        V = T.VOCAB_SIZES[voice]
        target = np.asarray(target, np.int64)
        uni = self.unigrams[voice]
        p = (uni[target] + 1.0) / (uni.sum() + V)
        k_max = self.order - 1
        history = np.asarray(history, np.int64)[:, :k_max]
        known = history >= 0
        usable = np.cumprod(known, axis=1).sum(1) if k_max else np.zeros(len(target), np.int64)
        for k in range(1, k_max + 1):
            level = self.tables[voice][k - 1]
            ctx = self._key(np.maximum(history[:, :k], 0), V)
            c_h = self._lookup(level["ctx"], level["c_h"], ctx)
            types = self._lookup(level["ctx"], level["types"], ctx)
            c_hx = self._lookup(level["joint"], level["c_hx"], ctx * V + target)
            p_k = np.where(c_h > 0, (c_hx + types * p) / np.maximum(c_h + types, 1e-300), p)
            p = np.where(usable >= k, p_k, p)
        return np.log(p)

    def history_at(self, evalset: EvalSet, rows: np.ndarray, frame: np.ndarray, voice: int,
                   hidden: np.ndarray | None = None) -> np.ndarray:
        """(N, order-1) context of the cells (rows[n], frame[n], voice) of ``evalset``: the
        cells before each in its window, -1 where hidden, BOS before a window that starts
        its piece and -1 (unknown) before one that does not."""
        k = max(0, self.order - 1)
        V = T.VOCAB_SIZES[voice]
        history = np.full((len(frame), k), -1, np.int64)
        at_start = evalset.start[rows] == 0
        for j in range(k):
            f = frame - 1 - j
            inside = f >= 0
            fc = np.maximum(f, 0)
            token = evalset.tokens[rows, fc, voice].astype(np.int64)
            if hidden is not None:
                token = np.where(hidden[rows, fc, voice], -1, token)
            history[:, j] = np.where(inside, token, np.where(at_start, V, -1))
        return history


def ngram_masked_nll(ngram: NGramBaseline, evalset: EvalSet, rates=MASK_RATES, seed: int = 0) -> dict:
    """The n-gram's masked-cell NLL on the same cells as ``model_masked_nll``: each hidden cell
    from the observed cells just before it in its voice (no future, no other voices)."""
    out = {}
    for rate in rates:
        hidden = random_mask(evalset, rate, seed)
        sums, counts = np.zeros(T.N_VOICES), np.zeros(T.N_VOICES)
        for v in range(T.N_VOICES):
            n, f = np.nonzero(hidden[:, :, v])
            if len(n) == 0:
                continue
            history = ngram.history_at(evalset, n, f, v, hidden)
            sums[v] = -ngram.log_prob(v, history, evalset.tokens[n, f, v]).sum()
            counts[v] = len(n)
        out[str(rate)] = _summary(sums, counts)
    return out


def ngram_continuation_nll(ngram: NGramBaseline, cset: EvalSet) -> dict:
    """The n-gram's continuation NLL at the positions of ``cset`` (history: the frames before)."""
    sums, counts = np.zeros(T.N_VOICES), np.zeros(T.N_VOICES)
    rows = np.arange(len(cset))
    ok = cset.valid[rows, cset.target]
    for v in range(T.N_VOICES):
        history = ngram.history_at(cset, rows, cset.target, v)
        target = cset.tokens[rows, cset.target, v]
        sums[v] = -ngram.log_prob(v, history, target)[ok].sum()
        counts[v] = ok.sum()
    return _summary(sums, counts)


def ngram_select_order(train: EncodedSplit, valid: EncodedSplit, orders=(2, 3, 4, 5), n_positions: int = 2048,
                       seed: int = 0, shifts=(0,)) -> tuple[NGramBaseline, dict[int, float]]:
    """Fit up to ``max(orders)`` on train, pick the order with the lowest continuation NLL
    on valid; returns the chosen model and every order's validation NLL."""
    full = NGramBaseline.fit(train, max(orders), shifts)
    cset = continuation_set(valid, n_positions, seed=seed)
    scores = {k: ngram_continuation_nll(full.with_order(k), cset)["nll"] for k in orders}
    best = min(scores, key=scores.get)
    return full.with_order(best), scores
