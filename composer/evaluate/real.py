"""Real music for the evaluation: the encoded corpus' splits, cut like the generated pieces.

Excerpts are bar-aligned in each piece's own meter (a 3/4 piece gives 3/4 bars); pieces at
least half as long as an excerpt are taken whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from composer.music import tokens as T
from composer.corpus.encoded import EncodedSplit, encoded_dir, load_meta, load_split
from composer.corpus.split import SPLITS
from composer.music.grid import Piece

__all__ = ["RealData", "label_of"]


def label_of(piece: Piece) -> str | None:
    """A real piece's label for the style figures: its game, else its composer."""
    return piece.game or piece.composer


@dataclass
class RealData:
    """The encoded corpus' splits (as the trainer reads them) and its label lists."""

    folder: Path  # the encoded corpus folder
    games: list[str]
    composers: list[str]
    splits: dict[str, EncodedSplit] = field(default_factory=dict)

    @classmethod
    def load(cls, data: str | Path, splits=SPLITS) -> RealData:
        """``data``: the data root or its encoded/ folder."""
        meta = load_meta(data)
        return cls(encoded_dir(data), list(meta["games"]), list(meta["composers"]),
                   {name: load_split(data, name) for name in splits})

    def pieces(self, name: str) -> list[Piece]:
        """Every piece of split ``name``, whole."""
        split = self.splits[name]
        return [split.piece(i) for i in range(len(split))]

    def excerpts(self, name: str, frames: int, per_piece: int = 1, first: bool = False, max_pieces: int | None = None,
                 seed: int = 0) -> list[Piece]:
        """Bar-aligned excerpts of about ``frames`` frames: the first one of every piece
        (``first``) or up to ``per_piece`` non-overlapping random ones; pieces of at least
        half that length are taken whole."""
        split = self.splits[name]
        rng = np.random.default_rng(seed)
        indices = np.arange(len(split))
        if max_pieces is not None and len(indices) > max_pieces:
            indices = np.sort(rng.choice(indices, max_pieces, replace=False))
        out = []
        for i in indices:
            piece = split.piece(int(i))
            fpb = piece.frames_per_bar
            bars = max(1, frames // fpb)
            whole = piece.n_frames // fpb
            if whole < bars:
                if piece.n_frames * 2 >= frames and whole >= 1:
                    out.append(piece.bars(0, whole))
                continue
            slots = whole // bars
            chosen = [0] if first else sorted(rng.choice(slots, min(per_piece, slots), replace=False))
            for slot in chosen:
                out.append(piece.bars(int(slot) * bars, int(slot) * bars + bars))
        return out

    def matched_excerpts(self, mix: dict[str, float], count: int, frames: int, splits=("valid", "test"),
                         seed: int = 0) -> list[Piece]:
        """About ``count`` held-out excerpts (``splits``: music no model trained on) in the
        label proportions of ``mix``: ``round(share x count)`` of each label, cycling through
        its pieces with a random bar-aligned window each time (whole when shorter)."""
        rng = np.random.default_rng(seed)
        by_label: dict[str, list[Piece]] = {}
        for name in splits:
            for piece in self.pieces(name):
                by_label.setdefault(label_of(piece), []).append(piece)
        out = []
        for label, share in sorted(mix.items()):
            pieces = by_label.get(label, [])
            if not pieces:
                continue
            order = rng.permutation(len(pieces))
            for k in range(max(1, round(share * count))):
                piece = pieces[int(order[k % len(pieces)])]
                bars = max(1, frames // piece.frames_per_bar)
                whole = piece.n_frames // piece.frames_per_bar
                start = int(rng.integers(0, whole - bars + 1)) if whole > bars else 0
                out.append(piece.bars(start, min(whole, start + bars)) if whole else piece)
        return out

    def from_first_note(self, name: str, bars: int, min_bars: int = 8) -> list[Piece]:
        """For structure: ``bars`` bars of every piece (in its own meter) from the bar of the
        lead's first note (an intro without the lead is skipped, as ``theme_return`` does),
        or fewer when the piece ends sooner, but at least ``min_bars``."""
        out = []
        for piece in self.pieces(name):
            onsets = np.flatnonzero(piece.grid[:, T.VOICE_INDEX["lead"]] >= T.PITCH_OFFSET)
            if len(onsets) == 0:
                continue
            first = int(onsets[0]) // piece.frames_per_bar
            stop = min(piece.n_frames // piece.frames_per_bar, first + bars)
            if stop - first >= min_bars:
                out.append(piece.bars(first, stop))
        return out
