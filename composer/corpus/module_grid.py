"""A tracker song reduced to the grid: 16th notes from rows, drums from samples, roles from streams.

A tracker is not a score, and four of its habits need an answer before its notes fit the
five voices (see ``composer.music.reduction`` for the reduction itself):

* **A row is not a 16th note.** Speed 6 at 125 BPM makes a row a 16th at 125 quarters a
  minute, but speed 3 makes it a 32nd, and a slow song's row can be an 8th. The grid keeps
  the tracker's rows as its clock (so a song that swings by alternating speeds 8 and 6
  stays on the grid) and chooses how many rows make a 16th (``ROWS_PER_16TH``): the
  choices that keep nearly every onset on the grid, then the one whose tempo is nearest
  to a quarter note of 120 a minute.
* **A channel is not a voice.** A MOD alternates bass and snare on one channel and an IT
  spreads a part over several. A *stream* is one instrument on one channel; every four
  bars the streams sounding are given roles by their pitch and how much they play
  (``stream_roles``), so an intro's melody is the lead even if another stream leads later.
* **Drums are samples, not a channel.** An instrument is a drum when its name says so
  (kick, snare, hat...) or when it is an unlooped sample played at one or two pitches
  whose sound is noise-like or short; its drum class comes from the name, else from where
  its sound's energy lies (``drum_class``).
* **A note's pitch is relative to its sample.** The played period gives the pitch as if
  every sample sounded C at 8363 Hz; a sample recorded an octave away sounds an octave
  away. Each pitched sample's own pitch is measured (YIN on its waveform) and the octave
  corrected where the measure is confident (``octave_shift``).

Arpeggio effects (``0xy``) play a chord by cycling its notes: the chord tones they imply
go into the harmony voice (then the counter) wherever that voice is free.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from composer.music import tokens as T
from composer.corpus.modules import Module, SampleInfo, Song
from composer.music.grid import Piece, estimate_key, frames_per_bar
from composer.music.reduction import Part, fill_free, reduce_parts

ROWS_PER_16TH = (0.5, 1.0, 2.0, 4.0)  # a row is an 8th, a 16th, a 32nd or a 64th note
MIN_TEMPO, MAX_TEMPO = 60.0, 200.0  # quarters a minute a row clock must give
ON_GRID = 0.98  # share of onsets on even rows that makes the rows 32nds
PITCH_RANGE = (28, 96)  # where a pitched stream's median must land (octave corrections)
WINDOW_BARS = 4  # roles are decided afresh every this many bars
MAIN_SHARE = 0.15  # a stream sounding less than this share of the busiest one's time is harmony
BASS_BELOW = 50  # a stream playing alone below this median pitch is the bass
BASE_RATE = 8363.0  # Hz at which a sample plays for pitch 60 (the trackers' "C-5"/"C-2")
MIN_NOTES = 8  # a song with fewer pitched notes is a sound effect, not music
MIN_FRAMES = 4 * 16  # nor is one shorter than four bars of 4/4

# Drum names, most specific first (a "bass drum" is a kick, not a bass).
_DRUM_WORDS: tuple[tuple[str, str], ...] = (
    ("kick", r"kick|ba(ss|se) ?dr|\bbd|\bkck|\bkik|thump"),
    ("open_hat", r"open ?h|hi-?open|\bohh?\b|o\.?hat"),
    ("hat", r"hi-?hat|\bhh|\bhat|hihat|c\.?hat|closed"),
    ("snare", r"snare|\bsd\b|\bsd\d|\bsnr|\bsn\d|clap"),
    ("tom", r"\btom|kettle|timpani"),
    ("cymbal", r"crash|ride|cymbal|\bcym|splash|china"),
    ("perc", r"drum|perc|conga|bongo|shaker|tamb|cowbell|\brim|timbal|cabasa|clave|woodblock|noise"),
)
_DRUM_RE = [(name, re.compile(pattern, re.I)) for name, pattern in _DRUM_WORDS]
_GM_KEY = T.DRUM_EXPORT_KEY  # drum class -> the General MIDI key the reduction reads back


def drum_from_name(name: str) -> str | None:
    """The drum class an instrument or sample name announces, if any."""
    for drum, pattern in _DRUM_RE:
        if pattern.search(name):
            return drum
    return None


# -- the sound of a sample ----------------------------------------------------------------
def _steady(sample: SampleInfo) -> np.ndarray:
    """A stretch of the sample's sustained sound: its loop repeated, or the body after the attack."""
    audio = sample.audio
    if len(audio) < 64:
        return audio
    return audio[len(audio) // 8 :] if not sample.looped else audio[-min(len(audio), 4096) :]


def yin_period(audio: np.ndarray, max_lag: int = 1200, threshold: float = 0.15) -> tuple[float, float]:
    """(period in sample frames, aperiodicity 0..1) by YIN's cumulative mean normalised
    difference; aperiodicity near 0 is a clear pitch, near 1 noise. (0, 1) if too short."""
    x = np.asarray(audio, np.float64)
    w = min(2048, len(x) // 2)
    max_lag = min(max_lag, len(x) - w - 1)
    if w < 32 or max_lag < 4 or not np.any(x):
        return 0.0, 1.0
    frame = x[:w]
    diff = np.array([np.sum((frame - x[lag : lag + w]) ** 2) for lag in range(max_lag + 1)])
    cum = np.cumsum(diff[1:])
    cmnd = np.ones_like(diff)
    cmnd[1:] = diff[1:] * np.arange(1, max_lag + 1) / np.maximum(cum, 1e-12)
    below = np.flatnonzero(cmnd[2:] < threshold) + 2
    if len(below):
        lag = int(below[0])
        while lag + 1 <= max_lag and cmnd[lag + 1] < cmnd[lag]:
            lag += 1
    else:
        lag = int(np.argmin(cmnd[2:]) + 2)
    if 1 <= lag < max_lag:  # parabolic interpolation
        a, b, c = cmnd[lag - 1], cmnd[lag], cmnd[lag + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom else 0.0
        return lag + float(np.clip(shift, -1, 1)), float(cmnd[lag])
    return float(lag), float(cmnd[lag])


def octave_shift(sample: SampleInfo) -> int:
    """Semitones (a multiple of 12) to add to the period's pitch so it sounds where the
    sample really sounds; 0 when the sample's own pitch cannot be measured with confidence."""
    steady = _steady(sample)
    if sample.looped and len(steady) < 4096:
        steady = np.tile(steady, 4096 // max(1, len(steady)) + 1)
    period, aperiodic = yin_period(steady)
    if period <= 0 or aperiodic > 0.2:
        return 0
    sounding = 69.0 + 12.0 * math.log2(BASE_RATE / period / 440.0)  # its pitch when played as 60
    return 12 * round((sounding - 60.0) / 12.0)


def drum_class(sample: SampleInfo, pitch: float) -> str:
    """A drum class from the sound itself: where its energy lies when played at ``pitch``."""
    audio = sample.audio[:4096]
    if len(audio) < 16 or not np.any(audio):
        return "perc"
    rate = BASE_RATE * 2.0 ** ((pitch - 60.0) / 12.0)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1.0 / rate)
    centroid = float(np.sum(freqs * spectrum) / max(np.sum(spectrum), 1e-12))
    if centroid < 400:
        return "kick"
    if centroid < 2500:
        _, aperiodic = yin_period(audio, max_lag=min(600, len(audio) // 3))
        return "tom" if aperiodic < 0.2 else "snare"
    return "hat"


# -- streams and roles --------------------------------------------------------------------
@dataclass
class Stream:
    """One instrument on one channel over a whole song."""

    channel: int
    instrument: int
    index: np.ndarray  # the song's note indices
    drum: str | None  # drum class (one for the stream), or None for a pitched stream
    shift: int  # octave correction in semitones


def _is_drum_sound(sample: SampleInfo, pitches: np.ndarray, seconds: np.ndarray) -> bool:
    """An unlooped sample hit at one or two pitches that sounds like noise or is short."""
    if sample.looped or len(np.unique(np.round(pitches))) > 2:
        return False
    _, aperiodic = yin_period(_steady(sample))
    return aperiodic > 0.35 or float(np.median(seconds)) < 0.12


def streams_of(module: Module, song: Song) -> list[Stream]:
    notes = song.notes
    out = []
    keys = np.stack([notes.channel, notes.instrument], axis=1) if len(notes) else np.zeros((0, 2), int)
    for channel, instrument in np.unique(keys, axis=0) if len(keys) else []:
        index = np.flatnonzero((notes.channel == channel) & (notes.instrument == instrument))
        sample_ids = notes.sample[index]
        main = int(np.bincount(sample_ids).argmax())
        sample = module.samples[main] if 0 <= main < len(module.samples) else SampleInfo("", False, 0, np.zeros(0))
        name = module.instruments[instrument] if 0 <= instrument < len(module.instruments) else ""
        drum = drum_from_name(name) or drum_from_name(sample.name)
        pitches = notes.pitch[index]
        if drum is None and _is_drum_sound(sample, pitches, (notes.end - notes.start)[index]):
            drum = drum_class(sample, float(np.median(pitches)))
        shift = 0 if drum else octave_shift(sample)
        if not drum:  # an octave the measure missed still leaves the stream in a playable range
            median = float(np.median(pitches)) + shift
            shift += 12 * (math.ceil((PITCH_RANGE[0] - median) / 12) if median < PITCH_RANGE[0] else
                           -math.ceil((median - PITCH_RANGE[1]) / 12) if median > PITCH_RANGE[1] else 0)
        out.append(Stream(int(channel), int(instrument), index, drum, shift))
    return out


def stream_roles(parts: list[Part]) -> dict[int, list[Part]]:
    """Roles of pitched streams: the bass is the lowest stream that plays a real share of
    the time, the lead the highest such stream, the counter the next; the rest, and the
    streams that play little, are harmony (``reduce_parts`` then lets counter and harmony
    take the chord tones the others dropped). A stream playing alone is the lead, or the
    bass when it lies low."""
    lead, counter, harmony, bass = (T.VOICE_INDEX[v] for v in T.PITCHED_VOICES)
    sounding = [float(np.sum(np.asarray(p.ends) - np.asarray(p.starts))) for p in parts]
    main = [p for p, s in zip(parts, sounding) if s >= MAIN_SHARE * max(sounding)]
    ranked = sorted(main, key=lambda p: float(np.median(p.pitches)), reverse=True)
    if len(ranked) == 1 and float(np.median(ranked[0].pitches)) < BASS_BELOW:
        roles: dict[int, list[Part]] = {bass: ranked[:1]}
    else:
        roles = {lead: ranked[:1]}
    if len(ranked) >= 2:
        roles[bass] = [ranked[-1]]
    if len(ranked) >= 3:
        roles[counter] = [ranked[1]]
    rest = ranked[2:-1] + [p for p in parts if p not in main]
    if rest:
        roles[harmony] = rest
    return roles


def windowed_roles(window_of: dict[int, int]):
    """``stream_roles`` decided afresh in every window (``window_of``: id(part) -> window):
    a song's orchestration changes, and the melody of its intro is the lead even when
    another stream carries the melody later."""

    def roles(parts: list[Part]) -> dict[int, list[Part]]:
        out: dict[int, list[Part]] = {}
        for window in sorted({window_of[id(p)] for p in parts}):
            for voice, chosen in stream_roles([p for p in parts if window_of[id(p)] == window]).items():
                out.setdefault(voice, []).extend(chosen)
        return out

    return roles


# -- the clock ----------------------------------------------------------------------------
def rows_per_16th(song: Song) -> float:
    """How many rows make a 16th note. A row is a 16th (the trackers' default, speed 6 at
    125 BPM) unless that makes the tempo absurd: rows are 32nds or 64ths while a 16th would
    be faster than ``MAX_TEMPO`` quarters a minute, and 8ths when slower than ``MIN_TEMPO``.
    The onset histogram decides the rest: when nearly every onset (``ON_GRID``) falls on
    an even row, the rows are 32nds of a song in 16ths."""
    row_seconds = song.seconds / max(song.rows, 1)

    def tempo(r: float) -> float:
        return 60.0 / (T.FRAMES_PER_QUARTER * r * row_seconds)

    r = 1.0
    while tempo(r) > MAX_TEMPO and r < ROWS_PER_16TH[-1]:
        r *= 2
    if tempo(r) < MIN_TEMPO:
        return ROWS_PER_16TH[0]
    rows = song.notes.row
    while r < ROWS_PER_16TH[-1] and tempo(2 * r) >= MIN_TEMPO + 10 and len(rows):
        frames = rows / (2 * r)
        if float(np.mean(np.abs(frames - np.rint(frames)) < 0.25)) < ON_GRID:
            break
        r *= 2
    return r


def time_signature_of(song: Song, r: float) -> tuple[int, int]:
    """3/4 where the song's patterns hold a whole number of 3/4 bars and not of 4/4 ones."""
    lengths = song.pattern_rows
    if len(lengths) == 0:
        return (4, 4)
    common = int(np.bincount(lengths).argmax()) / r
    if common % 16 and not common % 12:
        return (3, 4)
    return (4, 4)


def song_piece(module: Module, song: Song, **meta) -> Piece | None:
    """The song on the grid, or None when it is a sound effect rather than music."""
    notes = song.notes
    r = rows_per_16th(song)
    time_signature = time_signature_of(song, r)
    fpb = frames_per_bar(time_signature)
    streams = streams_of(module, song)
    parts, chord_tones, window_of = [], [], {}
    window_frames = WINDOW_BARS * fpb
    for s in streams:
        starts = notes.row[s.index] / r / T.FRAMES_PER_QUARTER  # quarter notes
        ends = notes.end_row[s.index] / r / T.FRAMES_PER_QUARTER
        name = f"ch{s.channel}-i{s.instrument}"
        if s.drum:
            parts.append(Part(name, True, starts, starts + 0.25, np.full(len(s.index), _GM_KEY[s.drum])))
            continue
        pitches = np.rint(notes.pitch[s.index]).astype(np.int64) + s.shift
        windows = (starts * T.FRAMES_PER_QUARTER // window_frames).astype(np.int64)
        for w in np.unique(windows):
            mine = windows == w
            part = Part(f"{name}-w{w}", False, starts[mine], ends[mine], pitches[mine])
            window_of[id(part)] = int(w)
            parts.append(part)
        arp = notes.arpeggio[s.index]
        for k in np.flatnonzero(arp):
            for step in sorted({int(arp[k]) >> 4, int(arp[k]) & 0xF} - {0}):
                chord_tones.append((starts[k], ends[k], pitches[k] + step))
    pitched = [p for p in parts if not p.is_drum]
    if sum(len(p) for p in pitched) < MIN_NOTES:
        return None
    grid = reduce_parts(parts, fpb, roles=windowed_roles(window_of))
    if len(grid) < MIN_FRAMES:
        return None
    if chord_tones:
        tones = [
            (int(round(a * T.FRAMES_PER_QUARTER)), int(round(b * T.FRAMES_PER_QUARTER)), int(p))
            for a, b, p in chord_tones
        ]
        tones = [(a, max(b, a + 1), p) for a, b, p in tones if a < len(grid)]
        fill_free(grid[:, T.VOICE_INDEX["counter"]], fill_free(grid[:, T.VOICE_INDEX["harmony"]], tones))
    tempo = 60.0 / (T.FRAMES_PER_QUARTER * r * song.seconds / max(song.rows, 1))
    piece = Piece(grid=grid, time_signature=time_signature, tempo=round(float(np.clip(tempo, 20, 400)), 2), **meta)
    piece.key = estimate_key(piece)
    piece.extra["rows_per_16th"] = r
    return piece
