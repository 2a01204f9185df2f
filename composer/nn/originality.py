"""Originality: the longest span a piece shares with any training piece, in bars.

Every piece is reduced to its lead line as (interval, inter-onset interval) pairs, which is
transposition-invariant: a melody copied in another key still matches. The index holds
these sequences for the whole training corpus and a sorted table of hashed n-grams
(``SEED`` pairs); a query looks up its n-grams, then extends each hit both ways on the
actual symbols, so hash collisions never count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.music import tokens as T
from composer.corpus.encoded import load_split
from composer.music.grid import Piece

__all__ = ["lead_symbols", "OriginalityIndex", "SEED"]

SEED = 6  # n-gram length (pairs) used to find candidate matches: 7 notes
MAX_HITS_PER_GRAM = 64  # very common figures (repeated notes) are capped
_PRIME = np.uint64(1_000_003)


def lead_symbols(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lead-voice note onsets (frames) and their symbols: one per note after the first,
    ``(interval + 128) * 256 + min(ioi, 255)`` as uint16."""
    column = grid[:, T.VOICE_INDEX["lead"]]
    starts = np.flatnonzero(column >= T.PITCH_OFFSET)
    if len(starts) < 2:
        return starts, np.zeros(0, np.uint16)
    pitches = column[starts].astype(np.int16)
    intervals = np.clip(np.diff(pitches), -127, 127) + 128
    iois = np.clip(np.diff(starts), 0, 255)
    return starts, (intervals * 256 + iois).astype(np.uint16)


def _gram_hashes(symbols: np.ndarray, n: int = SEED) -> np.ndarray:
    if len(symbols) < n:
        return np.zeros(0, np.uint64)
    s = symbols.astype(np.uint64) + np.uint64(1)
    h = np.zeros(len(symbols) - n + 1, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _PRIME + s[k : len(symbols) - n + 1 + k]
    return h


@dataclass
class Match:
    bars: float  # length of the shared span
    source: str | None  # id of the training piece it came from
    query_start_bar: float = 0.0


class OriginalityIndex:
    def __init__(self, symbols: np.ndarray, starts: np.ndarray, offsets: np.ndarray, ids: list[str],
                 frames_per_bar: np.ndarray):
        self.symbols = symbols  # all pieces' symbols, concatenated
        self.starts = starts  # onset frame of the note each symbol ends on
        self.offsets = offsets  # (n + 1,) piece boundaries in symbols
        self.ids = list(ids)
        self.frames_per_bar = frames_per_bar
        hashes, piece_of, pos = [], [], []
        for p in range(len(ids)):
            h = _gram_hashes(symbols[offsets[p] : offsets[p + 1]])
            hashes.append(h)
            piece_of.append(np.full(len(h), p, np.int32))
            pos.append(np.arange(len(h), dtype=np.int32))
        hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._piece = np.concatenate(piece_of)[order] if piece_of else np.zeros(0, np.int32)
        self._pos = np.concatenate(pos)[order] if pos else np.zeros(0, np.int32)

    # -- building and storing --------------------------------------------------------------
    @classmethod
    def from_grids(cls, grids: list[np.ndarray], ids: list[str], frames_per_bar: list[int]) -> OriginalityIndex:
        symbols, starts, offsets = [], [], [0]
        for grid in grids:
            onset_frames, sym = lead_symbols(grid)
            symbols.append(sym)
            starts.append(onset_frames[1:].astype(np.int32) if len(sym) else np.zeros(0, np.int32))
            offsets.append(offsets[-1] + len(sym))
        return cls(np.concatenate(symbols) if symbols else np.zeros(0, np.uint16),
                   np.concatenate(starts) if starts else np.zeros(0, np.int32),
                   np.array(offsets, np.int64), ids, np.array(frames_per_bar, np.int16))

    @classmethod
    def from_encoded(cls, data_dir: str | Path, splits=("train",)) -> OriginalityIndex:
        """The index of the encoded corpus' ``splits`` (``data_dir``: the data root or its encoded/ folder)."""
        grids, ids, fpb = [], [], []
        for name in splits:
            split = load_split(data_dir, name)
            grids += [split.piece_grid(i) for i in range(len(split))]
            ids += split.ids
            fpb += split.frames_per_bar.tolist()
        return cls.from_grids(grids, ids, fpb)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, symbols=self.symbols, starts=self.starts, offsets=self.offsets,
                            ids=np.array(self.ids), frames_per_bar=self.frames_per_bar)

    @classmethod
    def load(cls, path: str | Path) -> OriginalityIndex:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["symbols"], z["starts"], z["offsets"], [str(x) for x in z["ids"]], z["frames_per_bar"])

    def __len__(self) -> int:
        return len(self.ids)

    # -- querying --------------------------------------------------------------------------
    def longest_match(self, piece: Piece | np.ndarray, frames_per_bar: int | None = None,
                      exclude: str | None = None) -> Match:
        """The longest lead-line span ``piece`` shares with an indexed piece (``exclude``
        skips one id, e.g. the piece itself when measuring real music)."""
        grid = piece.grid if isinstance(piece, Piece) else piece
        fpb = frames_per_bar or (piece.frames_per_bar if isinstance(piece, Piece) else 16)
        q_starts, q = lead_symbols(grid)
        best = Match(0.0, None)
        hashes = _gram_hashes(q)
        if len(hashes) == 0 or len(self._hashes) == 0:
            return best
        lo = np.searchsorted(self._hashes, hashes, "left")
        hi = np.searchsorted(self._hashes, hashes, "right")
        extended: dict[tuple[int, int], int] = {}  # (piece, diagonal) -> query end already covered
        for i in np.flatnonzero(hi > lo):
            for k in range(lo[i], min(hi[i], lo[i] + MAX_HITS_PER_GRAM)):
                p, j = int(self._piece[k]), int(self._pos[k])
                if exclude is not None and self.ids[p] == exclude:
                    continue
                if extended.get((p, j - i), -1) > i:
                    continue  # inside a span already measured
                seq = self.symbols[self.offsets[p] : self.offsets[p + 1]]
                a, b = i, j  # extend backwards
                while a > 0 and b > 0 and q[a - 1] == seq[b - 1]:
                    a, b = a - 1, b - 1
                length = 0  # then forwards
                while a + length < len(q) and b + length < len(seq) and q[a + length] == seq[b + length]:
                    length += 1
                if length < SEED:
                    continue  # a hash collision
                # Span from the note before the first shared interval to the last note's onset.
                first = q_starts[a]
                last = q_starts[a + length]
                bars = (last - first) / fpb
                if bars > best.bars:
                    best = Match(round(float(bars), 2), self.ids[p], round(first / fpb, 2))
                extended[(p, j - i)] = a + length
        return best
