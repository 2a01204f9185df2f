"""Style fidelity: does a `doom` piece sound like Doom, a `bach` piece like Bach?

Every piece is cut into windows of 64 frames (four 4/4 bars) and each window becomes a
vector of meter- and key-independent features (``window_features``): pitch-class
histogram rotated to its strongest pitch class, melodic-interval histograms of the lead and
the bass, inter-onset histogram, per-voice onset densities and activity, drum classes and
where the drums and notes fall in the beat, register, polyphony, note lengths.

Two small torch classifiers (a one-hidden-layer MLP, full-batch Adam, fixed seed; seconds
on a CPU) are trained on these features:

* the **style classifier**, on real music only (train split), labels = games and composers
  (one label per real piece); it is checked on the held-out test split, then asked which
  style each generated piece is (a piece's prediction: its windows' summed log-probabilities);
* the **real-vs-generated classifier**, trained and scored by piece-grouped k-fold cross-
  validation on held-out real windows vs generated windows: a balanced accuracy near 50 %
  means the two cannot be told apart from these features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from composer.music import tokens as T
from composer.analysis.metrics import voice_notes

__all__ = [
    "WINDOW",
    "FEATURE_NAMES",
    "window_features",
    "Classifier",
    "train_classifier",
    "piece_predictions",
    "real_vs_generated",
]

WINDOW = 64  # frames per window: four 4/4 bars
MAX_INTERVAL = 12
_IOI_EDGES = np.array([2, 3, 4, 5, 7, 9, 13, 17])  # bins: 1, 2, 3, 4, 5-6, 7-8, 9-12, 13-16, 17+


def _names() -> list[str]:
    names = [f"pc_rot_{i}" for i in range(12)]
    names += [f"lead_interval_{i - MAX_INTERVAL}" for i in range(2 * MAX_INTERVAL + 1)]
    names += [f"bass_interval_{i - MAX_INTERVAL}" for i in range(2 * MAX_INTERVAL + 1)]
    names += [f"ioi_bin_{i}" for i in range(len(_IOI_EDGES) + 1)]
    names += [f"onsets_{v}" for v in T.VOICES]
    names += [f"active_{v}" for v in T.PITCHED_VOICES]
    names += [f"drum_{d}" for d in T.DRUM_CLASSES]
    names += [f"drum_beat_pos_{i}" for i in range(4)]
    names += [f"note_beat_pos_{i}" for i in range(4)]
    names += [f"mean_pitch_{v}" for v in T.PITCHED_VOICES]
    names += [f"pitch_std_{v}" for v in T.PITCHED_VOICES]
    names += ["polyphony"]
    names += [f"log_duration_{v}" for v in T.PITCHED_VOICES]
    return names


FEATURE_NAMES = _names()


def _normalise(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1e-12), 0.0)


def _binned(window_of: np.ndarray, bins: np.ndarray, n_windows: int, n_bins: int) -> np.ndarray:
    keep = window_of < n_windows
    flat = window_of[keep] * n_bins + bins[keep]
    return np.bincount(flat, minlength=n_windows * n_bins).reshape(n_windows, n_bins).astype(np.float64)


def window_features(grid: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """(n_windows, len(FEATURE_NAMES)) features of the consecutive whole windows of a grid
    (a tail shorter than ``window`` is dropped). Independent of key (the pitch-class
    histogram is rotated to its largest bin; intervals are relative) and of meter (only the
    position within the beat is used)."""
    n = len(grid) // window
    if n == 0:
        return np.zeros((0, len(FEATURE_NAMES)))
    grid = grid[: n * window]
    g = grid.reshape(n, window, T.N_VOICES)
    pitched = g[..., : T.DRUM_VOICE]
    sounding = pitched != T.REST  # (n, W, 4)
    onset = pitched >= T.PITCH_OFFSET
    frames = np.arange(n * window)

    # sounding pitch of every pitched cell (onset pitch carried through its holds)
    pitch = np.zeros((n * window, T.DRUM_VOICE))
    for v in range(T.DRUM_VOICE):
        column = grid[:, v]
        last = np.maximum.accumulate(np.where(column >= T.PITCH_OFFSET, frames, 0))
        pitch[:, v] = column[last].astype(np.float64) - T.PITCH_OFFSET + T.PITCH_MIN
    pitch = pitch.reshape(n, window, T.DRUM_VOICE)

    feats = []
    # pitch-class histogram (duration-weighted), rotated to the strongest pitch class
    pcs = np.where(sounding, pitch.astype(np.int64) % 12, 0)
    window_of_cell = np.repeat(np.arange(n), window)
    pc = np.zeros((n, 12))
    for v in range(T.DRUM_VOICE):
        on = sounding[..., v].ravel()
        pc += _binned(window_of_cell[on], pcs[..., v].ravel()[on], n, 12)
    pc = _normalise(pc)
    rotation = (np.arange(12)[None, :] + pc.argmax(1)[:, None]) % 12
    feats.append(np.take_along_axis(pc, rotation, 1))
    # melodic intervals of the lead and the bass; note lengths of every pitched voice
    durations = np.zeros((n, T.DRUM_VOICE))
    intervals = {}
    for v in range(T.DRUM_VOICE):
        starts, ends, pitches = voice_notes(grid, v)
        w = starts // window
        if len(starts):
            total = np.bincount(w, weights=np.log2(ends - starts), minlength=n)
            count = np.bincount(w, minlength=n)
            durations[:, v] = np.where(count > 0, total / np.maximum(count, 1), 0.0) / 4
        if v in (T.VOICE_INDEX["lead"], T.VOICE_INDEX["bass"]):
            steps = np.clip(np.diff(pitches), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
            intervals[v] = _normalise(_binned(w[1:], steps.astype(np.int64), n, 2 * MAX_INTERVAL + 1))
    feats += [intervals[T.VOICE_INDEX["lead"]], intervals[T.VOICE_INDEX["bass"]]]
    # inter-onset intervals of all pitched onsets together
    any_onset = np.flatnonzero(onset.reshape(n * window, -1).any(1))
    ioi = np.diff(any_onset)
    feats.append(_normalise(_binned(any_onset[1:] // window, np.digitize(ioi, _IOI_EDGES), n, len(_IOI_EDGES) + 1)))
    # densities (onsets per whole note, scaled) and activity
    drums = g[..., T.DRUM_VOICE]
    whole_notes = window / 16
    feats.append(np.concatenate([onset.sum(1), (drums != T.REST).sum(1)[:, None]], 1) / whole_notes / 8)
    feats.append(sounding.mean(1))
    # drum classes, and where drums and notes fall in the beat
    feats.append(np.stack([(drums == k).mean(1) for k in range(1, T.DRUM_VOCAB)], 1))
    beat_pos = np.arange(window) % T.FRAMES_PER_QUARTER
    hits = (drums != T.REST)
    feats.append(_normalise(np.stack([(hits & (beat_pos == k)).sum(1) for k in range(4)], 1).astype(float)))
    notes_any = onset.any(2)
    feats.append(_normalise(np.stack([(notes_any & (beat_pos == k)).sum(1) for k in range(4)], 1).astype(float)))
    # register
    count = sounding.sum(1)
    mean_pitch = np.where(count > 0, (pitch * sounding).sum(1) / np.maximum(count, 1), 60.0)
    var = np.where(count > 0, ((pitch - mean_pitch[:, None, :]) ** 2 * sounding).sum(1) / np.maximum(count, 1), 0.0)
    feats += [(mean_pitch - 60.0) / 12.0, np.sqrt(var) / 12.0]
    # polyphony: mean sounding pitched voices over frames where any sounds
    voices_on = sounding.sum(2)
    active = voices_on > 0
    feats.append((np.where(active.any(1), (voices_on * active).sum(1) / np.maximum(active.sum(1), 1), 0.0) / 4)[:, None])
    feats.append(durations)
    out = np.concatenate(feats, 1)
    assert out.shape[1] == len(FEATURE_NAMES), (out.shape, len(FEATURE_NAMES))
    return out


# -- classifiers -----------------------------------------------------------------------
@dataclass
class Classifier:
    net: nn.Module
    mean: np.ndarray
    std: np.ndarray
    classes: list[str]

    @torch.no_grad()
    def log_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, classes) log-probabilities."""
        x = torch.from_numpy(((X - self.mean) / self.std).astype(np.float32))
        return torch.log_softmax(self.net(x), -1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.log_proba(X).argmax(1)


def train_classifier(X: np.ndarray, y: np.ndarray, classes: list[str], hidden: int = 64, epochs: int = 200,
                     lr: float = 1e-2, weight_decay: float = 1e-3, seed: int = 0, balanced: bool = True) -> Classifier:
    """Standardise, then fit a one-hidden-layer MLP (``hidden`` = 0: softmax regression)
    by full-batch Adam on the (class-balanced) cross-entropy. Deterministic for a seed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only loses time to thread hand-offs
    try:
        return _fit(X, y, classes, hidden, epochs, lr, weight_decay, seed, balanced)
    finally:
        torch.set_num_threads(threads)


def _fit(X, y, classes, hidden, epochs, lr, weight_decay, seed, balanced) -> Classifier:
    torch.manual_seed(seed)
    mean = X.mean(0)
    std = X.std(0) + 1e-6
    x = torch.from_numpy(((X - mean) / std).astype(np.float32))
    target = torch.from_numpy(y.astype(np.int64))
    k = len(classes)
    net = nn.Linear(X.shape[1], k) if hidden == 0 else nn.Sequential(
        nn.Linear(X.shape[1], hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, k))
    counts = np.bincount(y, minlength=k).astype(np.float64)
    weight = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0) \
        if balanced else np.ones(k)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weight, dtype=torch.float32))
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    net.train()
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), target)
        loss.backward()
        optimizer.step()
    net.eval()
    return Classifier(net, mean, std, list(classes))


def piece_predictions(clf: Classifier, X: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One prediction per group (piece): the class with the largest summed window
    log-probability. Returns (unique groups, predicted class index)."""
    logp = clf.log_proba(X)
    uniq, inverse = np.unique(groups, return_inverse=True)
    total = np.zeros((len(uniq), logp.shape[1]))
    np.add.at(total, inverse, logp)
    return uniq, total.argmax(1)


def real_vs_generated(real_X: np.ndarray, real_groups: np.ndarray, gen_X: np.ndarray, gen_groups: np.ndarray,
                      folds: int = 4, seed: int = 0, hidden: int = 32, epochs: int = 200) -> dict:
    """Balanced accuracy of a real-vs-generated classifier under piece-grouped k-fold
    cross-validation (every window of a piece is in the same fold). 0.5 = chance."""
    X = np.concatenate([real_X, gen_X])
    y = np.concatenate([np.zeros(len(real_X), np.int64), np.ones(len(gen_X), np.int64)])
    groups = np.concatenate([np.asarray(real_groups, str), np.char.add("gen:", np.asarray(gen_groups, str))])
    rng = np.random.default_rng(seed)
    fold_of_group = {}
    for label in (0, 1):
        uniq = np.unique(groups[y == label])
        k = min(folds, len(uniq))
        if k < 2:
            return {"balanced_accuracy": math.nan, "folds": 0, "n_real": int(len(real_X)),
                    "n_generated": int(len(gen_X)), "note": "too few pieces for cross-validation"}
        for g, f in zip(rng.permutation(uniq), np.arange(len(uniq)) % k):
            fold_of_group[g] = int(f)
    fold = np.array([fold_of_group[g] for g in groups])
    k = fold.max() + 1
    predicted = np.zeros(len(y), np.int64)
    for f in range(k):
        test = fold == f
        if test.all() or not test.any() or len(np.unique(y[~test])) < 2:
            continue
        clf = train_classifier(X[~test], y[~test], ["real", "generated"], hidden=hidden, epochs=epochs, seed=seed + f)
        predicted[test] = clf.predict(X[test])
    recall_real = float((predicted[y == 0] == 0).mean())
    recall_gen = float((predicted[y == 1] == 1).mean())
    return {"balanced_accuracy": (recall_real + recall_gen) / 2, "accuracy_real": recall_real,
            "accuracy_generated": recall_gen, "folds": int(k), "n_real": int(len(real_X)),
            "n_generated": int(len(gen_X))}
