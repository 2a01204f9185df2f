"""Stingers: a one- or two-bar jingle in a piece's key, tempo, metre and style (victory, defeat,
discovery), to play over the piece or after it.

The infiller writes it after the piece's last bars (``CONTEXT_BARS``, read, not written),
so its lines and texture continue the piece's, under constraints (``Generator.infill``):
every pitch in the piece's key, and a final chord that says which stinger it is, held to
the end. Victory lands on the tonic chord with the bass on the tonic; defeat stops on the
dominant with no tonic anywhere in it, unresolved; discovery opens onto the subdominant.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece, estimate_key, parse_key
from composer.generate.layers import piece_request
from composer.generate.seeds import STINGER_STREAM

if TYPE_CHECKING:
    from composer.generate.generator import Generator

LEAD, COUNTER, HARMONY, BASS, DRUMS = (T.VOICE_INDEX[v] for v in T.VOICES)
CONTEXT_BARS = 2  # the piece's last bars the infiller reads before the stinger
SHORT_BAR_SECONDS = 2.0  # a bar shorter than this makes a two-bar stinger, else one bar
STINGER_STEPS = 8  # infilling passes (a few bars: cheap)
RANGES = {LEAD: (60, 88), COUNTER: (52, 79), HARMONY: (48, 74), BASS: (28, 52)}  # where the final chord sits


@dataclass(frozen=True)
class Stinger:
    description: str  # what it sounds like
    bass: int  # scale degree (1 = the tonic) of the final bass note
    chord: tuple[int, ...]  # scale degrees the upper voices may end on


# The kinds of stinger: the one declaration the CLI, the bot and the playground read.
STINGERS: dict[str, Stinger] = {
    "victory": Stinger("a fanfare that lands on the tonic chord, the bass on the tonic", 1, (1, 3, 5)),
    "defeat": Stinger("a phrase left hanging on the dominant, unresolved", 5, (5, 7, 2)),
    "discovery": Stinger("a phrase that opens onto the subdominant, wondering", 4, (4, 6, 1)),
}
STINGER_FORMATS = ("ogg", "mid")  # in its zip, with its beat map


def degree_class(tonic: int, mode: str, degree: int) -> int:
    """The pitch class of a scale degree (1-7) of the key; minor's seventh is the leading tone."""
    from composer.generate.sampling import SCALES  # noqa: PLC0415 - torch, for the model's own use

    steps = SCALES[mode] if mode == "major" else tuple(d for d in SCALES[mode] if d != 10)
    return (tonic + steps[(degree - 1) % 7]) % 12


def stinger_bars(piece: Piece) -> int:
    """1 or 2: two when a bar of the piece lasts less than ``SHORT_BAR_SECONDS``."""
    return 2 if piece.seconds / max(1, piece.n_bars) < SHORT_BAR_SECONDS else 1


def compose_stinger(generator: Generator, piece: Piece, kind: str) -> Piece:
    """A ``kind`` stinger (one of ``STINGERS``) for ``piece``: its key, tempo, metre and style."""
    if kind not in STINGERS:
        raise ValueError(f"Unknown stinger {kind!r}. Choose from: {', '.join(STINGERS)}.")
    piece = piece.pad_to_bars()
    key = piece.key or estimate_key(piece) or "C major"
    from composer.generate.sampling import SCALES  # noqa: PLC0415

    tonic, mode = parse_key(key)
    spec = STINGERS[kind]
    fpb = piece.frames_per_bar
    context = min(CONTEXT_BARS, piece.n_bars)
    bars = stinger_bars(piece)
    head = piece.bars(piece.n_bars - context, piece.n_bars)
    grid = np.concatenate([head.grid, np.zeros((bars * fpb, T.N_VOICES), np.uint8)])
    start = context * fpb
    free = np.zeros(grid.shape, bool)
    free[start:] = True
    allowed = np.ones(grid.shape + (T.PITCHED_VOCAB,), bool)
    in_key = np.zeros(T.PITCHED_VOCAB, bool)
    in_key[[T.REST, T.HOLD]] = True
    in_key[[T.onset(p) for p in range(T.PITCH_MIN, T.PITCH_MAX + 1) if (p - tonic) % 12 in SCALES[mode]]] = True
    allowed[start:, : T.DRUM_VOICE] = in_key
    # the final chord: from the last half of the last bar (its last beat in 3/4) to the end
    beat = T.FRAMES_PER_QUARTER * 4 // piece.time_signature[1]
    final = len(grid) - max(1, piece.time_signature[0] // 2) * beat
    bass_class = degree_class(tonic, mode, spec.bass)
    chord = {degree_class(tonic, mode, d) for d in spec.chord}
    for v, (low, high) in RANGES.items():
        classes = {bass_class} if v == BASS else chord
        notes = [T.onset(p) for p in range(low, high + 1) if p % 12 in classes]
        allowed[final, v] = False
        allowed[final, v, notes] = True
        if v in (COUNTER, HARMONY):  # inner voices may also fall silent for the final chord
            allowed[final, v, T.REST] = True
        allowed[final + 1 :, v] = False
        allowed[final + 1 :, v, T.HOLD] = True
        if v in (COUNTER, HARMONY):
            allowed[final + 1 :, v, T.REST] = True
    request = piece_request(piece, STINGER_STREAM, list(STINGERS).index(kind)).replace(
        bars=context + bars, form="through", key=key)
    [done] = generator.infill([request], [grid], [free], [allowed], STINGER_STEPS)
    done = _end_together(done, final)
    out = piece.copy(grid=done, sections=None).bars(context, context + bars)
    out.key = key
    out.title = f"{piece.title} ({kind})" if piece.title else kind
    out.extra = {**piece.extra, "stinger": kind, "loop": False}
    return out


def _end_together(grid: np.ndarray, final: int) -> np.ndarray:
    """A voice silent at the final chord stays silent to the end (a hold after a rest is no note)."""
    grid = grid.copy()
    for v in (COUNTER, HARMONY):
        if grid[final, v] == T.REST:
            grid[final:, v] = T.REST
    return grid


def stinger_zip(stinger: Piece, sound: str, basename: str) -> bytes:
    """The stinger's audio, MIDI and beat map, named ``<basename>-<kind>.*``."""
    from composer.render import render  # noqa: PLC0415

    rendered = render(stinger, sound=sound, formats=STINGER_FORMATS)
    kind = stinger.extra.get("stinger", "stinger")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for fmt, data in rendered.data.items():
            archive.writestr(f"{basename}-{kind}.{rendered.filename(fmt).split('.', 1)[1]}", data)
    return buffer.getvalue()
