"""The intervals of the training pieces, per label and voice: how far a line moves from one note to
the next (*melodic*), which interval a note sounds above each other voice sounding with it
(*vertical*), and where the voice lies (*register*, an octave's moving sum of its pitches). The
sampler scores each candidate pitch by them (``generate.sampling``), by the request's
``smoothness`` (lines and register) and ``consonance`` (vertical).

The networks alone leap too much: 37-47 % of their melodic intervals were wider than a fifth,
against 4-13 % in real music. v1-v3 fixed that with a penalty per semitone of leap, the same for
every style and voice, and a classifier still told the music from real mostly by its intervals:
the bass almost never moved by an octave (0.4 % of its intervals against 4.4 % in real music)
and moved by thirds twice as often as real basses, the lead stepped by a semitone half as often.
v3.2 pulled each note towards its style's own melodic intervals.

Voices drawn independently of each other clash: over the 450 pieces of the selection set, 58 % of
the intervals between an upper voice and the bass were consonant, against 81 % in real music, and
a third above the bass sounded a third as often (5 % against 15 %). So v3.3 scores the vertical
intervals too, with the voices drawn one after another (the bass first).

Multiplying the networks' odds by a style's histogram counts a habit twice where the networks
already have it: repeated notes, which both like, rose to 40 % of the bass's intervals against
26 % in real music. So a model folder also keeps the same tables counted in its networks' own
pieces, composed with both pulls off (``generate.calibrate``), and a candidate is scored by the
*ratio* of the style's odds to the networks' own: what the networks miss is added, what they
already do is left alone. Lines scored so wander further (a lead spanning 20 semitones in 16 bars
against 15 in real music), so the register, not calibrated, holds them where the style's voices lie.

The register is pooled over all of a style's pieces, and one real piece's lead covers nearly all of
it in 16 bars. Multiplied in as it is, it pulled every piece towards the pool's middle: the
composers' voices spanned about two thirds of a real piece's span (Mozart's pieces 39-40 semitones
against a real 40-48). So a composer's register odds are flat wherever a voice lies at least
``REGISTER_TOP`` as often as where it lies most: the register keeps a voice out of where the style
never puts it, and leaves it free inside. A game's register stays as counted: its generated voices
span as much as real ones or more, and flattened, Dink's lines wandered out of its range and the
pieces were heard as Dink less often (80 -> 67-70 %).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from composer.analysis.metrics import voice_notes
from composer.music import tokens as T

SPAN = 24  # melodic intervals are counted from -SPAN to +SPAN semitones; wider ones count as the widest
PSEUDO_COUNTS = 100.0  # a label's histogram is smoothed towards every label's by this many intervals
FLOOR = 1e-4  # no interval is impossible
SILENT, UNKNOWN = -1, -2  # what ``sounding`` gives for a resting cell and for one not drawn yet
# The tables: their shape after the label axis, and their key in intervals.npz (melodic keeps v3.2's name).
N_PITCHES = T.PITCH_MAX - T.PITCH_MIN + 1
SHAPES = {"melodic": (T.DRUM_VOICE, 2 * SPAN + 1), "vertical": (T.DRUM_VOICE, T.DRUM_VOICE, 12),
          "register": (T.DRUM_VOICE, N_PITCHES)}
KEYS = {"melodic": "counts", "vertical": "vertical", "register": "register"}
CALIBRATED = ("melodic", "vertical")  # the tables scored as a ratio to the networks' own
OWN = "own_"  # key prefix of a table counted in the networks' own pieces
REGISTER_TOP = 0.5  # a composer's register odds are flat above this share of a voice's likeliest pitch (v3.6)


def sounding(tokens: np.ndarray) -> np.ndarray:
    """(T, voices) tokens -> the pitch sounding in each cell (a note's holds carry its pitch),
    ``SILENT`` where the voice rests and ``UNKNOWN`` where it is masked (not drawn yet)."""
    index = np.arange(len(tokens))[:, None]
    anchor = np.maximum.accumulate(np.where(tokens != T.HOLD, index, -1), axis=0)  # the note, rest or mask held
    token = np.take_along_axis(tokens, np.maximum(anchor, 0), 0)
    pitch = np.where((token >= T.PITCH_OFFSET) & (token < T.PITCHED_VOCAB),
                     token.astype(np.int64) - T.PITCH_OFFSET + T.PITCH_MIN, SILENT)
    pitch = np.where(token >= T.PITCHED_VOCAB, UNKNOWN, pitch)
    return np.where(anchor < 0, SILENT, pitch)


def count(grid: np.ndarray) -> dict[str, np.ndarray]:
    """Every table's counts in one piece's ``grid`` (T, 5)."""
    melodic = np.zeros(SHAPES["melodic"])
    for v in range(T.DRUM_VOICE):
        pitches = voice_notes(grid, v)[2]
        if len(pitches) > 1:
            melodic[v] = np.bincount(np.clip(np.diff(pitches), -SPAN, SPAN) + SPAN, minlength=2 * SPAN + 1)
    tokens = grid[:, : T.DRUM_VOICE]
    pitch = sounding(tokens)
    onset = T.is_onset(tokens)
    vertical = np.zeros(SHAPES["vertical"])
    for v in range(T.DRUM_VOICE):
        for u in range(T.DRUM_VOICE):
            both = onset[:, v] & (pitch[:, u] >= 0) & (u != v)
            vertical[v, u] = np.bincount((pitch[both, v] - pitch[both, u]) % 12, minlength=12)
    register = np.zeros(SHAPES["register"])
    for v in range(T.DRUM_VOICE):
        register[v] = np.bincount(tokens[onset[:, v], v] - T.PITCH_OFFSET, minlength=N_PITCHES)
    return {"melodic": melodic, "vertical": vertical, "register": register}


@dataclass
class IntervalBank:
    """Interval counts per label (games, then composers; the last row: every piece), of the
    training split and, once calibrated, of the networks' own pieces."""

    labels: list[str]
    tables: dict[str, np.ndarray]  # name -> (len(labels) + 1, *SHAPES[name]); v3.2's tables have no "vertical"
    own: dict[str, np.ndarray] = field(default_factory=dict)  # the same, counted in the networks' own pieces

    @classmethod
    def counted(cls, labels: list[str], pieces) -> IntervalBank:
        """From ``pieces``: (grid, the rows of ``labels`` it counts under) pairs."""
        tables = {name: np.zeros((len(labels) + 1, *shape)) for name, shape in SHAPES.items()}
        for grid, rows in pieces:
            rows = [len(labels), *rows]
            for name, counts in count(grid).items():
                tables[name][rows] += counts
        return cls(list(labels), tables)

    @classmethod
    def from_split(cls, split) -> IntervalBank:
        """From an encoded split (``composer.corpus.encoded``): each piece counts under its game and
        its composer."""
        labels = list(split.games) + list(split.composers)

        def pieces():
            for i in range(len(split.lengths)):
                rows = [int(split.game[i])] if split.game[i] >= 0 else []
                if split.composer[i] >= 0:
                    rows.append(len(split.games) + int(split.composer[i]))
                yield split.piece_grid(i), rows

        return cls.counted(labels, pieces())

    def calibrated(self, pieces) -> IntervalBank:
        """This bank with its ``own`` tables counted in ``pieces`` ((grid, label names) pairs): the
        networks' own pieces, composed with the pulls off (``generate.calibrate``)."""
        rows = ([self.labels.index(x) for x in names if x in self.labels] for _, names in pieces)
        own = IntervalBank.counted(self.labels, zip((grid for grid, _ in pieces), rows))
        return IntervalBank(self.labels, self.tables,
                            {n: t for n, t in own.tables.items() if n in self.tables and n in CALIBRATED})

    def save(self, path: str | Path) -> None:
        arrays = {KEYS[n]: t.astype(np.float32) for n, t in self.tables.items()}
        arrays |= {OWN + KEYS[n]: t.astype(np.float32) for n, t in self.own.items()}
        np.savez_compressed(path, labels=np.array(self.labels), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> IntervalBank:
        with np.load(path, allow_pickle=False) as z:
            tables = {n: z[k].astype(np.float64) for n, k in KEYS.items() if k in z.files}
            own = {n: z[OWN + k].astype(np.float64) for n, k in KEYS.items() if OWN + k in z.files}
            return cls([str(x) for x in z["labels"]], tables, own)

    @property
    def counts(self) -> np.ndarray:
        """The melodic table."""
        return self.tables["melodic"]

    def probabilities(self, label: str | None, table: str = "melodic", own: bool = False) -> np.ndarray:
        """How often each voice of ``label`` moves by each interval ("melodic": (pitched voices,
        2 * SPAN + 1)), sounds each interval above each other voice ("vertical": (voices, voices,
        12)) or sounds each pitch ("register": (voices, pitches)), in the training split (or in the
        networks' own pieces: ``own``), smoothed towards every label's habits (``PSEUDO_COUNTS``)."""
        counts = (self.own if own else self.tables)[table]
        every = counts[-1]
        mine = counts[self.labels.index(label)] if label in self.labels else every
        if table == "register":  # an octave's moving sum: where a voice lies, not which notes of a key
            every, mine = (np.apply_along_axis(np.convolve, -1, rows, np.ones(12), "same") for rows in (every, mine))
        every = every / every.sum(-1, keepdims=True).clip(min=1)
        p = (mine + PSEUDO_COUNTS * every) / (mine.sum(-1, keepdims=True) + PSEUDO_COUNTS)
        p = p + FLOOR
        return p / p.sum(-1, keepdims=True)

    def odds(self, label: str | None, table: str, composer: bool = False) -> torch.Tensor:
        """What a candidate's intervals are multiplied by: the style's probabilities, divided by the
        networks' own where the bank is calibrated; a ``composer``'s register flat over its top."""
        p = self.probabilities(label, table)
        if table in self.own:
            p = p / self.probabilities(label, table, own=True)
        if table == "register" and composer:  # bounds, not a target (the module docstring)
            p = np.minimum(p / p.max(-1, keepdims=True), REGISTER_TOP)
        return torch.from_numpy(p).float()

    def lines(self, game: str | None, composer: str | None, share: float) -> Lines:
        """The intervals a request's lines keep: its game's and its composer's, ``share`` of them
        the composer's (a blend's: its main parent's, ``generate.conditions.lines_share``)."""
        labels = [x for x in (game, composer) if x is not None] or [None]
        odds = {}
        for name in self.tables:
            first, *rest = (self.odds(label, name, composer=composer is not None and label == composer)
                            for label in labels)
            odds[name] = (1 - share) * first + share * rest[0] if rest else first
        return Lines(odds)


@dataclass
class Lines:
    """One request's interval odds per table (a blend's two labels already mixed)."""

    odds: dict[str, torch.Tensor]  # table -> (*SHAPES[table])
    logs: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # taken once: asked for every frame

    def log_odds(self, table: str, voices: torch.Tensor) -> torch.Tensor | None:
        """(len(voices), *SHAPES[table][1:]): the log-odds of each interval for each cell's voice;
        None when the bank has no such table."""
        if table not in self.odds:
            return None
        if table not in self.logs:
            self.logs[table] = torch.log(self.odds[table])
        return self.logs[table][voices]
