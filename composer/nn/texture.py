"""Texture plans: per bar, which voices sound and how busily, taken from the style's real music.

A listener hears texture before notes: a melody alone, voices entering, a break before
the theme returns. v2 left texture to chance, frame by frame, and missed each style's
density both ways (doom 27 onsets a bar against 15 in real doom, openttd 11 against 24)
and now and then wrote a bass line with nothing above it. So composing now plans first.

``TextureBank`` keeps, for every training piece, each bar's *texture*: per voice the
onsets and the sounding cells (a drum's hits). A request's ``plan`` lays windows of real
bars of its style end to end (a form's repeated sections share one window; a blend takes
each section's pitched texture from the game or the composer by ``blend``, and its drums
mostly from the game, as the product of experts does), keeping only windows where a
voice above the bass sounds in at least ``UPPER_SHARE`` of the bars. Real music does
that in 96-100 % of the pieces of every label; the rare bar that still has no line above
the bass gets the lead of the style's typical bar.

The draft then writes notes under the plan (``Plan.kind_bias``): a voice the plan leaves
silent in a bar rests there; an active one is steered towards the plan's onsets and
sounding cells by a running deficit, so the network still chooses *where* the notes go.
The steering is gentle (``DEFICIT_GAIN``, ``SLACK``): measured on 450 pieces (eval seed
1000), a gain of 1.2 nats per onset with no slack evened the lead's notes out through the
bar (lead inter-onset overlap with real music 0.84 -> 0.60); 0.6 with a slack of one onset
kept it at 0.79 and gave the best style accuracy (game styles 75 %, bach 53 %; v2 66 %, 40 %).
Only textures are borrowed, never notes: originality is measured on the notes.

A composer's voices sound through a bar: in Bach's chorales all four hold from one note to
the next, and a silent voice in such a bar is a gap a listener hears. The draft left them:
over the 30 Bach pieces of the selection set 0.25 of the four voices were silent in a frame
against 0.03 in real chorales (polyphony 3.74 against 3.81-3.97). So in a bar whose texture
is a composer's and where the plan has a voice sounding ``THROUGH_SHARE`` of the bar, a
silence of a beat or more (a piece's opening included) ends with a note (``THROUGH_GAIN``).
The rule keeps to composers' sections: on game textures it made Doom less recognisable
(87 % -> 63 % on the selection set), while on composers' it made Bach more so (53 % -> 80 %).

A plan keeps its real bars' **breaks**: a beat in which the whole band rests (a chorale's
fermata, a stop before the theme returns) rests in the piece too. The draft never left a beat
empty (real music: 3 % of beats, Bach 7 %), and the statistics overlap heard it: empty-beat
overlap 0.51 -> 0.88 and the mean overlap 0.812 -> 0.844 on the selection set.

``grooves`` make drums repeat as a groove: the first full bar of drums in each section
becomes its pattern, and later bars of the section are pulled towards it, except in the
last half-bar of every four-bar phrase, where a fill may go.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from composer.music import tokens as T
from composer.music.grid import section_runs

MAX_BARS_PER_LABEL = 6000  # the bank keeps at most this many bars of each label (folk has 77,000)
UPPER_SHARE = 0.75  # a plan has a voice above the bass in at least this share of its bars
WINDOW_TRIES = 12  # windows tried per section before settling for the best
PHRASE_BARS = 4  # windows start on a phrase, and fills end one
FORCE = 30.0  # nats: what "must" means for a kind (rest, hold, onset)
DEFICIT_GAIN = 0.6  # nats of bias per onset (or SOUND_DIVISOR sounding cells) the bar is behind its plan
SOUND_DIVISOR = 4.0  # (a controller on sounding cells, 4x softer than on onsets; 2 and 1 changed nothing measured)
MAX_BIAS = 4.0
THROUGH_SHARE = 0.9  # a voice sounding this share of a composer's bar in the plan sounds through it
THROUGH_GAP = T.FRAMES_PER_QUARTER  # a silence this long (cells) in such a bar is a gap
THROUGH_GAIN = 3.0  # nats towards ending that gap with a note
SLACK = 1.0  # onsets (or SOUND_DIVISOR sounding cells) of deficit the steering lets through
GROOVE_PULL = 3.0  # nats towards the groove's token at each position
MIN_GROOVE_HITS = 2  # a bar with fewer drum hits does not set a groove
UPPER_VOICES = tuple(T.VOICE_INDEX[v] for v in ("lead", "counter", "harmony"))
LEAD = T.VOICE_INDEX["lead"]


def bar_breaks(grid: np.ndarray, fpb: int) -> np.ndarray:
    """(bars,) bit k set where beat k (a quarter note) of a whole bar of ``grid`` is silent: no
    note sounds and no drum plays."""
    bars, q = len(grid) // fpb, T.FRAMES_PER_QUARTER
    beats = fpb // q
    silent = (grid[: bars * fpb] == T.REST).all(1).reshape(bars, fpb)[:, : beats * q].reshape(bars, beats, q).all(2)
    return (silent * (1 << np.arange(beats))).sum(1).astype(np.uint16)


def bar_textures(grid: np.ndarray, fpb: int) -> tuple[np.ndarray, np.ndarray]:
    """(bars, 5) onsets and (bars, 5) sounding cells of each whole bar of ``grid``."""
    bars = len(grid) // fpb
    g = grid[: bars * fpb].reshape(bars, fpb, T.N_VOICES)
    onsets = (g >= T.PITCH_OFFSET).sum(1)
    onsets[:, T.DRUM_VOICE] = (g[..., T.DRUM_VOICE] != T.REST).sum(1)
    sounding = (g != T.REST).sum(1)
    return onsets.astype(np.uint8), sounding.astype(np.uint8)


@dataclass
class TextureBank:
    """Bar textures of the training pieces, grouped by label."""

    labels: list[str]  # label names (games, then composers)
    piece_label: np.ndarray  # (pieces,) index into labels
    piece_fpb: np.ndarray  # (pieces,) frames per bar
    offsets: np.ndarray  # (pieces + 1,) into the bar arrays
    onsets: np.ndarray  # (bars, 5) uint8
    sounding: np.ndarray  # (bars, 5) uint8
    breaks: np.ndarray  # (bars,) uint16: bit k set where beat k is silent (``bar_breaks``)

    @classmethod
    def from_split(cls, split, labels: list[str] | None = None, seed: int = 0) -> TextureBank:
        """From an encoded split (``composer.corpus.encoded``): every piece under each of its
        labels (``labels``: only these), up to ``MAX_BARS_PER_LABEL`` bars of a label (pieces
        drawn at random)."""
        every = list(split.games) + list(split.composers)
        labels = [label for label in every if labels is None or label in labels]
        rng = np.random.default_rng(seed)
        chosen: list[tuple[int, int]] = []  # (label, piece)
        for k, label in enumerate(labels):
            game = label in split.games
            column = split.game if game else split.composer
            index = (split.games if game else split.composers).index(label)
            pieces = rng.permutation(np.flatnonzero(column == index))
            bars = np.cumsum(split.lengths[pieces] // np.maximum(split.frames_per_bar[pieces], 1))
            chosen += [(k, int(i)) for i in pieces[: max(1, int(np.searchsorted(bars, MAX_BARS_PER_LABEL)) + 1)]]
        onsets, sounding, breaks, fpbs, owners = [], [], [], [], []
        for k, i in chosen:
            fpb = int(split.frames_per_bar[i])
            grid = split.piece_grid(i)
            on, snd = bar_textures(grid, fpb)
            if len(on):
                onsets.append(on)
                sounding.append(snd)
                breaks.append(bar_breaks(grid, fpb))
                fpbs.append(fpb)
                owners.append(k)
        lengths = [len(o) for o in onsets]
        return cls(labels, np.array(owners, np.int16), np.array(fpbs, np.int16),
                   np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   np.concatenate(onsets) if onsets else np.zeros((0, T.N_VOICES), np.uint8),
                   np.concatenate(sounding) if sounding else np.zeros((0, T.N_VOICES), np.uint8),
                   np.concatenate(breaks) if breaks else np.zeros(0, np.uint16))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, labels=np.array(self.labels), piece_label=self.piece_label,
                            piece_fpb=self.piece_fpb, offsets=self.offsets, onsets=self.onsets,
                            sounding=self.sounding, breaks=self.breaks)

    @classmethod
    def load(cls, path: str | Path) -> TextureBank:
        with np.load(path, allow_pickle=False) as z:
            breaks = z["breaks"] if "breaks" in z.files else np.zeros(len(z["onsets"]), np.uint16)  # (v3's bank)
            return cls([str(x) for x in z["labels"]], z["piece_label"], z["piece_fpb"], z["offsets"],
                       z["onsets"], z["sounding"], breaks)

    # -- planning ---------------------------------------------------------------------------
    def _pieces(self, label: str | None, fpb: int) -> np.ndarray:
        """The label's pieces in the metre, else all of its pieces (their bars rescaled)."""
        if label is None or label not in self.labels:
            return np.zeros(0, np.int64)
        mine = np.flatnonzero(self.piece_label == self.labels.index(label))
        same = mine[self.piece_fpb[mine] == fpb]
        return same if len(same) else mine

    def _window(self, pieces: np.ndarray, bars: int, fpb: int, rng: np.random.Generator):
        """``bars`` consecutive real bars from a random piece (starting on a phrase when the
        piece allows), rescaled to ``fpb``; pieces shorter than that are laid end to end. A
        window from another metre keeps no breaks."""
        on, snd, brk = [], [], []
        while sum(len(o) for o in on) < bars:
            i = int(pieces[rng.integers(len(pieces))])
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            need = bars - sum(len(o) for o in on)
            starts = np.arange(0, max(1, hi - lo - need + 1))
            phrase = starts[starts % PHRASE_BARS == 0]
            s = lo + int(rng.choice(phrase if len(phrase) else starts))
            scale = fpb / int(self.piece_fpb[i])
            on.append(np.minimum(np.rint(self.onsets[s : s + need] * scale), fpb))
            snd.append(np.minimum(np.rint(self.sounding[s : s + need] * scale), fpb))
            brk.append(self.breaks[s : s + need] if scale == 1 else np.zeros(len(on[-1]), np.uint16))
        return np.concatenate(on)[:bars], np.concatenate(snd)[:bars], np.concatenate(brk)[:bars]

    def plan(self, game: str | None, composer: str | None, blend: float | np.ndarray, bars: int, fpb: int,
             sections: list[str] | None, rng: np.random.Generator, drum_share: float) -> Plan | None:
        """A plan for ``bars`` bars (``sections``: one form letter per bar, or None), or None
        when the bank has no piece of the style. ``blend``: the composer's share, or one per
        bar when a blend's sections alternate between its parents (each section then takes
        its pitched texture from its own parent)."""
        games, composers = self._pieces(game, fpb), self._pieces(composer, fpb)
        if not len(games) and not len(composers):
            return None
        sections = sections or ["A"] * bars
        runs = section_runs(sections)
        onsets = np.zeros((bars, T.N_VOICES))
        sounding = np.zeros((bars, T.N_VOICES))
        breaks = np.zeros(bars, np.uint16)
        composed = np.zeros(bars, bool)  # bars whose pitched texture is a composer's
        chosen: dict[str, tuple] = {}  # letter -> onsets, sounding, breaks, a composer's
        for start, stop, letter in runs:
            n = stop - start
            if letter not in chosen or len(chosen[letter][0]) < n:
                # pitched texture from the game with probability 1 - blend (from the section's own
                # parent when blend is per bar); drums from the game with probability
                # 1 - blend x drum_share (games bring the groove)
                share = float(blend[start]) if isinstance(blend, np.ndarray) else blend
                to_game = share < 0.5 if isinstance(blend, np.ndarray) else rng.random() >= share
                source = games if not len(composers) or (len(games) and to_game) else composers
                drums = games if len(games) and (not len(composers) or rng.random() >= share * drum_share) else composers
                best, best_upper = None, -1.0
                for _ in range(WINDOW_TRIES):
                    on, snd, brk = self._window(source, n, fpb, rng)
                    upper = float(np.mean((snd[:, UPPER_VOICES] > 0).any(1)))
                    if upper > best_upper:
                        best, best_upper = (on, snd, brk), upper
                    if upper >= UPPER_SHARE:
                        break
                on, snd, brk = best
                if drums is not source:  # silent only where both windows are
                    d_on, d_snd, d_brk = self._window(drums, n, fpb, rng)
                    on, snd, brk = on.copy(), snd.copy(), brk & d_brk
                    on[:, T.DRUM_VOICE], snd[:, T.DRUM_VOICE] = d_on[:, T.DRUM_VOICE], d_snd[:, T.DRUM_VOICE]
                chosen[letter] = (on, snd, brk, source is composers)
            on, snd, brk, from_composer = chosen[letter]
            onsets[start:stop], sounding[start:stop], breaks[start:stop] = on[:n], snd[:n], brk[:n]
            composed[start:stop] = from_composer
        self._fill_upper(onsets, sounding, games if len(games) else composers)
        return Plan(onsets, sounding, fpb, sections, composed, breaks)

    def _fill_upper(self, onsets: np.ndarray, sounding: np.ndarray, pieces: np.ndarray) -> None:
        """While fewer than ``UPPER_SHARE`` of the bars have a voice above the bass, the last
        bars with none get the lead of the style's typical bar (an intro of bass and drums
        alone stays)."""
        none_above = np.flatnonzero(~(sounding[:, UPPER_VOICES] > 0).any(1))
        allowed = int(np.floor(len(sounding) * (1 - UPPER_SHARE)))
        if len(none_above) <= allowed:
            return
        empty = none_above[allowed:]
        bars = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in pieces])
        led = bars[self.sounding[bars, LEAD] > 0]
        if not len(led):
            led = bars
        onsets[empty, LEAD] = max(1.0, float(np.median(self.onsets[led, LEAD])))
        sounding[empty, LEAD] = max(onsets[empty, LEAD].max(), float(np.median(self.sounding[led, LEAD])))


def _slack(gap: np.ndarray) -> np.ndarray:
    """A deficit with ``SLACK`` either way let through: within it the network alone decides."""
    return np.sign(gap) * np.maximum(np.abs(gap) - SLACK, 0.0)


@dataclass
class Plan:
    """Per bar and voice, the onsets and sounding cells to aim for."""

    onsets: np.ndarray  # (bars, 5)
    sounding: np.ndarray  # (bars, 5)
    fpb: int
    sections: list[str]
    composed: np.ndarray  # (bars,) bool: the bar's pitched texture is a composer's (voices sound through)
    breaks: np.ndarray | None = None  # (bars,) bit k set: beat k is silent, as in the real bar (``bar_breaks``)

    def kind_bias(self, x: torch.Tensor, t: int, strength: float, offset: int = 0) -> torch.Tensor:
        """(5, 3) nats added to [rest, hold, onset] (drums: [rest, -, hit]) of frame ``t``,
        given what ``x`` (frames, 5) holds before it; ``x``'s frame ``t`` is the piece's
        ``t - offset`` (a loop's opening re-drafted after its end). (NumPy: once a frame.)"""
        bias = np.zeros((T.N_VOICES, 3), np.float32)
        bar, pos = divmod(t - offset, self.fpb)
        if not 0 <= bar < len(self.onsets) or strength <= 0:
            return torch.from_numpy(bias)
        so_far = x[t - pos : t].numpy()
        onsets = (so_far >= T.PITCH_OFFSET).sum(0)
        onsets[T.DRUM_VOICE] = (so_far[:, T.DRUM_VOICE] != T.REST).sum()
        sounding = (so_far != T.REST).sum(0)
        share = (pos + 1) / self.fpb
        plan_on, plan_snd = self.onsets[bar], self.sounding[bar]
        onset_gap = np.clip(_slack(plan_on * share - onsets), -MAX_BIAS, MAX_BIAS)
        sound_gap = np.clip(_slack((plan_snd * share - sounding) / SOUND_DIVISOR), -MAX_BIAS, MAX_BIAS)
        bias[:, 2] = DEFICIT_GAIN * onset_gap * strength
        bias[:, 0] = -DEFICIT_GAIN * sound_gap * strength
        if self.composed[bar]:  # a gap in a voice the plan has sounding through the bar ends with a note
            through = plan_snd >= THROUGH_SHARE * self.fpb
            through[T.DRUM_VOICE] = False
            recent = x[max(0, t - THROUGH_GAP) : t].numpy()
            gap = through & (recent == T.REST).all(0)  # (a piece's first frame: a gap as long as the silence before it)
            bias[gap, 0] -= THROUGH_GAIN * strength
            bias[gap, 2] += THROUGH_GAIN * strength
        silent = (plan_snd <= 0) & (plan_on <= 0)
        bias[silent, 0] = FORCE
        bias[silent, 1:] = -FORCE
        planned_above = plan_snd[list(UPPER_VOICES)]
        if pos == self.fpb // 2 and planned_above.max() > 0 and not sounding[list(UPPER_VOICES)].any():
            # half the bar gone and nothing above the bass, though the plan has a line there: start it
            voice = UPPER_VOICES[int(np.argmax(planned_above))]
            bias[voice] = (-FORCE, -FORCE, FORCE)
        if self.breaks is not None and int(self.breaks[bar]) >> (pos // T.FRAMES_PER_QUARTER) & 1:
            bias[:, 0], bias[:, 1:] = FORCE, -FORCE  # a break: the whole band rests for the beat
        return torch.from_numpy(bias)

    def silent(self) -> np.ndarray:
        """(bars, 5) bool: voices the plan leaves silent in a bar."""
        return (self.sounding <= 0) & (self.onsets <= 0)


class Groove:
    """The drum pattern of each section: the first bar of it with ``MIN_GROOVE_HITS`` hits."""

    def __init__(self, fpb: int, sections: list[str] | None, bars: int):
        self.fpb = fpb
        self.section_of = list(sections) if sections else ["A"] * bars
        self.start_of = {}
        for b, letter in enumerate(self.section_of):
            if b == 0 or self.section_of[b - 1] != letter:
                self.start_of[b] = b
            else:
                self.start_of[b] = self.start_of[b - 1]
        self.patterns: dict[int, torch.Tensor] = {}  # section start bar -> (fpb,) drum tokens

    def token_bias(self, x: torch.Tensor, t: int, strength: float) -> torch.Tensor | None:
        """(DRUM_VOCAB,) nats towards the groove's token at frame ``t``, or None (no groove
        yet, or a fill position)."""
        bar, pos = divmod(t, self.fpb)
        if bar >= len(self.section_of) or strength <= 0:
            return None
        start = self.start_of[bar]
        if start not in self.patterns:
            for b in range(start, bar):  # the first full bar of drums of the section sets the groove
                column = x[b * self.fpb : (b + 1) * self.fpb, T.DRUM_VOICE]
                if int((column != T.REST).sum()) >= MIN_GROOVE_HITS:
                    self.patterns[start] = column.clone()
                    break
            else:
                return None
        if bar % PHRASE_BARS == PHRASE_BARS - 1 and pos >= self.fpb // 2:
            return None  # a fill may end the phrase
        bias = torch.zeros(T.DRUM_VOCAB)
        bias[int(self.patterns[start][pos])] = GROOVE_PULL * strength
        return bias


def regroove(column: np.ndarray, free: np.ndarray, fpb: int, rng: np.random.Generator,
             keep_own: float = 0.1) -> np.ndarray:
    """A drum column re-composed as a groove: the most common token at each position of the
    bar becomes the pattern; every free bar plays it, keeping its own token in ``keep_own``
    of the cells and its own last half-bar at the end of each four-bar phrase (a fill)."""
    bars = len(column) // fpb
    if bars < 2:
        return column
    grid = column[: bars * fpb].reshape(bars, fpb)
    pattern = np.array([np.bincount(grid[:, p], minlength=T.DRUM_VOCAB).argmax() for p in range(fpb)])
    if (pattern != T.REST).sum() < MIN_GROOVE_HITS:
        return column
    out = column.copy()
    for b in range(bars):
        lo = b * fpb
        mine = rng.random(fpb) < keep_own
        if b % PHRASE_BARS == PHRASE_BARS - 1:
            mine[fpb // 2 :] = True
        new = np.where(mine, grid[b], pattern)
        cells = free[lo : lo + fpb]
        out[lo : lo + fpb] = np.where(cells, new, column[lo : lo + fpb])
    return out
