"""Intensity layers ("vertical remixing"): one piece at calm, exploring and battle intensity.

A game cross-fades between them, at any bar, as the action changes, so they share
everything a cross-fade would reveal: the bars, the tempo, the key and the harmony. They are
not three pieces: the infiller re-composes a few voices of the piece under constraints
(``Generator.infill``) and keeps the rest.

* *calm*: the drums leave; the lead and the counter-melody are reduced to the notes they
  sound on the beat (a rhythmic reduction: nothing new to compose); harmony and bass as
  they are; softer.
* *explore*: the piece as composed.
* *battle*: the lead, the harmony and the bass stay; the infiller re-composes the
  counter-melody on every eighth note (its own notes kept in its rhythm), in its own pitch
  class on the beat and on the pitch classes sounding between; and drums on every eighth
  note the piece leaves empty (kick or cymbal on the downbeat, kick or snare on the other
  beats, hats between), their sounds chosen by the infiller; louder.

On every beat the three sound the same pitch classes, so the chords stay the chords
(tests/test_layers.py measures the chord roots with music21). All three share the
explore layer's mastering gain and then differ by ``Layer.level_db``, so they keep their
loudness relative to each other.
"""

from __future__ import annotations

import io
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece, estimate_key
from composer.generate.request import GenerationRequest, section_letters
from composer.generate.seeds import LAYER_STREAM, derived_seed

if TYPE_CHECKING:
    from composer.generate.generator import Generator

LEAD, COUNTER, HARMONY, BASS, DRUMS = (T.VOICE_INDEX[v] for v in T.VOICES)
CHORD_TONE_REACH = 5  # semitones: how far a calm lead note may move from the tune's to land on a chord tone
# Infilling passes. Only a voice or two is re-composed, every cell's kind is fixed and its
# pitches are few, so a few passes settle it (measured: 4 and 8 gave the same density, and
# agreement of chord roots within a point); each pass is one forward over the whole piece.
LAYER_STEPS = 4
BATTLE_COUNTER_RANGE = (52, 81)  # E3..A5, when the piece has no counter-melody to take a range from
STEP = 2  # frames: battle's new notes and drum hits fall on every eighth note


@dataclass(frozen=True)
class Cells:
    """What the infiller may write in a layer: the grid it starts from, its free cells and the
    tokens each free cell allows (``Generator.infill``)."""

    grid: np.ndarray  # (frames, 5)
    free: np.ndarray  # (frames, 5) bool
    allowed: np.ndarray | None  # (frames, 5, PITCHED_VOCAB) bool; None when nothing is free


@dataclass(frozen=True)
class Layer:
    description: str  # what a game developer hears in it
    level_db: float  # loudness beside the piece as composed
    cells: Callable[[Piece], Cells] | None  # how it is re-composed (None: it is the piece itself)


def sounding(grid: np.ndarray) -> np.ndarray:
    """(frames, 4) the MIDI pitch each pitched voice sounds in each frame, -1 where it rests."""
    out = np.full((len(grid), T.DRUM_VOICE), -1, np.int16)
    for v in range(T.DRUM_VOICE):
        current = -1
        for t, token in enumerate(grid[:, v].tolist()):
            if token >= T.PITCH_OFFSET:
                current = token - T.PITCH_OFFSET + T.PITCH_MIN
            elif token == T.REST:
                current = -1
            out[t, v] = current
    return out


def _pitches(allowed_pcs: set[int], low: int, high: int) -> list[int]:
    return [p for p in range(max(low, T.PITCH_MIN), min(high, T.PITCH_MAX) + 1) if p % 12 in allowed_pcs]


def on_the_beat(column: np.ndarray, pitch: np.ndarray, beat: int) -> np.ndarray:
    """A pitched voice's ``column`` reduced to the notes sounding on its beats: on every beat
    where it sounds, the pitch it sounds there (a new note when it changed or was played
    again there), held until the next beat or until the voice rests; ``pitch`` is its
    ``sounding`` column. Never more notes than the voice had, the same pitch on every beat."""
    out = np.full(len(column), T.REST, np.uint8)
    playing = -1  # the pitch ``out`` sounds, -1 when it rests
    for t in range(len(column)):
        if pitch[t] < 0:
            playing = -1
        elif t % beat == 0 and (pitch[t] != playing or column[t] >= T.PITCH_OFFSET):
            out[t], playing = T.onset(int(pitch[t])), int(pitch[t])
        elif playing >= 0:
            out[t] = T.HOLD
    return out


def calm_cells(piece: Piece) -> Cells:
    """No drums; the lead and the counter-melody reduced to their notes on the beat
    (``on_the_beat``); the harmony and the bass as they are. Nothing is left to infill: on
    every beat the same pitches sound as in the piece, so the chords are the piece's."""
    grid = piece.grid.copy()
    grid[:, DRUMS] = T.REST
    beat = T.FRAMES_PER_QUARTER * 4 // piece.time_signature[1]
    pitch = sounding(piece.grid)
    for v in (LEAD, COUNTER):
        grid[:, v] = on_the_beat(piece.grid[:, v], pitch[:, v], beat)
    return Cells(grid, np.zeros(grid.shape, bool), None)


def battle_cells(piece: Piece) -> Cells:
    """The counter-melody re-composed on every eighth note where a voice sounds (and on its
    own onsets), above the bass: on the beat in its own pitch class, between the beats on any
    pitch class sounding there; drums
    on every eighth note the piece's drums leave empty: kick or cymbal on the downbeat, kick
    or snare on the other beats, hats between."""
    grid = piece.grid.copy()
    fpb = piece.frames_per_bar
    beat = T.FRAMES_PER_QUARTER * 4 // piece.time_signature[1]
    free = np.zeros(grid.shape, bool)
    allowed = np.zeros(grid.shape + (T.PITCHED_VOCAB,), bool)
    allowed[:, :, T.REST] = True
    pitch = sounding(piece.grid)
    own = piece.grid[:, COUNTER]
    notes = pitch[:, COUNTER][pitch[:, COUNTER] >= 0]
    low, high = (int(notes.min()) - 3, int(notes.max()) + 3) if len(notes) else BATTLE_COUNTER_RANGE
    free[:, COUNTER] = True
    allowed[:, COUNTER] = False
    for t in range(len(grid)):
        chord = {int(p) % 12 for p in pitch[t] if p >= 0}  # every pitch class sounding, the counter's too
        onset = (t % STEP == 0 and chord) or own[t] >= T.PITCH_OFFSET
        if t % beat == 0 and pitch[t, COUNTER] >= 0:  # on the beat, its own pitch class: the chord stays
            chord = {int(pitch[t, COUNTER]) % 12}
        above = int(pitch[t, BASS]) + 1 if pitch[t, BASS] >= 0 else low  # never under the bass
        choices = _pitches(chord, max(low, above), high) or _pitches(chord, above, above + 23)  # out of its range
        if onset and choices:
            allowed[t, COUNTER, [T.onset(p) for p in choices]] = True
        elif own[t] >= T.PITCH_OFFSET:  # its own note, where nothing else sounds
            allowed[t, COUNTER, own[t]] = True
        elif chord or own[t] != T.REST:
            allowed[t, COUNTER, T.HOLD] = True
        else:
            allowed[t, COUNTER, T.REST] = True
    drums = piece.grid[:, DRUMS]
    hit = {name: T.drum_token(name) for name in T.DRUM_CLASSES}
    for t in range(0, len(grid), STEP):
        if drums[t] != T.REST:
            continue
        free[t, DRUMS] = True
        allowed[t, DRUMS] = False
        if t % fpb == 0:
            kinds = ("kick", "cymbal")
        elif t % beat == 0:
            kinds = ("kick", "snare")
        else:
            kinds = ("hat", "open_hat")
        allowed[t, DRUMS, [hit[k] for k in kinds]] = True
    return Cells(grid, free, allowed)


# The layers, softest first: the one declaration the CLI, the bot and the playground read.
LAYERS: dict[str, Layer] = {
    "calm": Layer("thinner texture, softer, no drums", -6.0, calm_cells),
    "explore": Layer("the piece as composed", 0.0, None),
    "battle": Layer("fuller texture, drums, denser rhythm, louder", 3.0, battle_cells),
}
LAYER_AUDIO = "ogg"  # each layer's audio: small, loops (LOOPSTART) and every engine reads it


def piece_request(piece: Piece, stream: int, k: int = 0) -> GenerationRequest:
    """The request a piece was composed with, on the piece's own shape (bars, metre, tempo,
    key, form when its sections match one), with a seed drawn from the piece's own in
    ``stream``: what its layers and stingers are infilled with."""
    base = GenerationRequest.from_params(piece.extra.get("params") or {})
    spec = GenerationRequest.specs()["tempo"]
    request = base.replace(
        style=piece.extra.get("style") or base.style, bars=piece.n_bars,
        time_signature=f"{piece.time_signature[0]}/{piece.time_signature[1]}",
        tempo=min(max(float(piece.tempo), spec.low), spec.high), key=piece.key or estimate_key(piece),
        seed=derived_seed(int(piece.extra.get("seed") or 0), stream, k), loop=False, best_of=1, primer=None)
    if not request.sections or section_letters(request) != piece.sections:
        request = request.replace(form="through")
    return request


def compose_layers(generator: Generator, piece: Piece, steps: int = LAYER_STEPS) -> dict[str, Piece]:
    """``LAYERS`` of ``piece``, by name, softest first; each as long as the piece, with its
    tempo, metre, key, sections and loop."""
    piece = piece.pad_to_bars()
    request = piece_request(piece, LAYER_STREAM)
    made = {name: layer.cells(piece) for name, layer in LAYERS.items() if layer.cells is not None}
    composed = {name: c.grid for name, c in made.items()}
    infilled = [name for name, c in made.items() if c.free.any()]
    if infilled:
        grids = generator.infill([request] * len(infilled), [made[n].grid for n in infilled],
                                 [made[n].free for n in infilled], [made[n].allowed for n in infilled], steps)
        composed.update(zip(infilled, grids))
    out = {}
    for name in LAYERS:
        layer = piece.copy(grid=composed[name]) if name in composed else piece.copy()
        layer.title = f"{piece.title} ({name})" if piece.title else name
        layer.extra["layer"] = name
        out[name] = layer
    return out


def layer_zips(layers: dict[str, Piece], sound: str, basename: str) -> dict[str, bytes]:
    """One zip per layer: its audio (``LAYER_AUDIO``, with loop points when the piece loops),
    its MIDI and its beat map, named ``<basename>-<layer>.*``. The layers share the explore
    layer's mastering gain and differ by their ``level_db``."""
    from composer.render import render  # noqa: PLC0415
    from composer.render.api import synthesise  # noqa: PLC0415
    from composer.render.audio import mastering_gain  # noqa: PLC0415
    from composer.render.presets import get_preset  # noqa: PLC0415

    explore = layers["explore"]
    x, rate, _, _ = synthesise(explore, get_preset(sound))  # (a tenth of the time of encoding it)
    gain = mastering_gain(x, rate)
    del x

    def one(name: str):
        return render(layers[name], sound=sound, formats=(LAYER_AUDIO, "mid"), gain=gain,
                      level_db=LAYERS[name].level_db)

    with ThreadPoolExecutor(len(layers), thread_name_prefix="layers") as pool:  # each mostly waits on ffmpeg
        rendered = dict(zip(layers, pool.map(one, layers)))
    out = {}
    for name, result in rendered.items():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for fmt, data in result.data.items():
                archive.writestr(f"{basename}-{name}.{result.filename(fmt).split('.', 1)[1]}", data,
                                 compress_type=zipfile.ZIP_STORED if fmt == LAYER_AUDIO else zipfile.ZIP_DEFLATED)
        out[name] = buffer.getvalue()
    return out
