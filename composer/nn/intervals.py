"""Melodic intervals of the training pieces: per label and voice, how far a line moves from one
note to the next in that style's real music. The sampler pulls each drafted note towards its
style's intervals from the notes either side of it (``generate.sampling.interval_scores``), by
the request's ``smoothness``.

The networks alone leap too much: 37-47 % of their melodic intervals were wider than a fifth,
against 4-13 % in real music. v1-v3 fixed that with a penalty per semitone of leap, the same for
every style and voice, and a classifier still told the music from real mostly by its intervals:
the bass almost never moved by an octave (0.4 % of its intervals against 4.4 % in real music)
and moved by thirds twice as often as real basses, the lead stepped by a semitone half as often.
A style's own intervals keep Bach's basses in octaves and fourths and a tracker's leads in their
arpeggios. On the 450 pieces of the selection set (docs/EVALUATION.md) they made every style
more recognisable and the statistics closer to real music's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from composer.analysis.metrics import voice_notes
from composer.music import tokens as T

SPAN = 24  # intervals are counted from -SPAN to +SPAN semitones; wider ones count as the widest
PSEUDO_COUNTS = 100.0  # a label's histogram is smoothed towards every label's by this many intervals
FLOOR = 1e-4  # no interval is impossible


@dataclass
class IntervalBank:
    """Melodic-interval counts of the training split: one histogram per label and pitched voice,
    and one over every piece (what a label unknown to the bank gets)."""

    labels: list[str]  # games, then composers
    counts: np.ndarray  # (len(labels) + 1, pitched voices, 2 * SPAN + 1); the last row: every piece

    @classmethod
    def from_split(cls, split) -> IntervalBank:
        """From an encoded split (``composer.corpus.encoded``): each piece counts under its game and
        its composer."""
        labels = list(split.games) + list(split.composers)
        counts = np.zeros((len(labels) + 1, T.DRUM_VOICE, 2 * SPAN + 1))
        for i in range(len(split.lengths)):
            grid = split.piece_grid(i)
            rows = [len(labels)]
            if split.game[i] >= 0:
                rows.append(int(split.game[i]))
            if split.composer[i] >= 0:
                rows.append(len(split.games) + int(split.composer[i]))
            for v in range(T.DRUM_VOICE):
                pitches = voice_notes(grid, v)[2]
                if len(pitches) > 1:
                    steps = np.clip(np.diff(pitches), -SPAN, SPAN) + SPAN
                    counts[rows, v] += np.bincount(steps, minlength=2 * SPAN + 1)
        return cls(labels, counts)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, labels=np.array(self.labels), counts=self.counts.astype(np.float32))

    @classmethod
    def load(cls, path: str | Path) -> IntervalBank:
        with np.load(path, allow_pickle=False) as z:
            return cls([str(x) for x in z["labels"]], z["counts"].astype(np.float64))

    def probabilities(self, label: str | None) -> np.ndarray:
        """(pitched voices, 2 * SPAN + 1): how often each voice of ``label`` moves by each interval,
        smoothed towards every label's habits (``PSEUDO_COUNTS``)."""
        every = self.counts[-1] / self.counts[-1].sum(-1, keepdims=True).clip(min=1)
        own = self.counts[self.labels.index(label)] if label in self.labels else self.counts[-1]
        p = (own + PSEUDO_COUNTS * every) / (own.sum(-1, keepdims=True) + PSEUDO_COUNTS)
        p = p + FLOOR
        return p / p.sum(-1, keepdims=True)

    def lines(self, game: str | None, composer: str | None, share: float | torch.Tensor) -> Lines:
        """The intervals a request's lines keep: its game's and its composer's, ``share`` (a number,
        or one per frame: a blend's sections) of them the composer's."""
        labels = [x for x in (game, composer) if x is not None]
        if len(labels) < 2:
            return Lines(torch.from_numpy(self.probabilities(labels[0] if labels else None)).float(), None, 0.0)
        return Lines(torch.from_numpy(self.probabilities(game)).float(),
                     torch.from_numpy(self.probabilities(composer)).float(), share)


@dataclass
class Lines:
    """One request's melodic intervals: ``first``'s, mixed with ``second``'s by ``share``."""

    first: torch.Tensor  # (pitched voices, 2 * SPAN + 1) probabilities
    second: torch.Tensor | None
    share: float | torch.Tensor  # of ``second``: a number, or one per frame

    def log_probs(self, frames: torch.Tensor, voices: torch.Tensor) -> torch.Tensor:
        """(len(frames), 2 * SPAN + 1): log-probability of each interval at each cell."""
        p = self.first[voices]
        if self.second is not None:
            share = self.share[frames][:, None] if isinstance(self.share, torch.Tensor) else self.share
            p = (1 - share) * p + share * self.second[voices]
        return torch.log(p)

    def frames(self, index) -> Lines:
        """The intervals over the frames ``index`` selects (a slice or index tensor) of the piece."""
        return Lines(self.first, self.second, self.share[index] if isinstance(self.share, torch.Tensor) else self.share)
