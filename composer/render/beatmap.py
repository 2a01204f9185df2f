"""The beat map: when every bar and beat falls, in seconds, so gameplay can follow the music.

Written beside the MIDI of every export as ``<name>.beats.json``::

    {"format": "mozart-beatmap", "format_version": 1, "tempo": 132.0, "time_signature": [3, 4],
     "seconds_per_beat": 0.4545, "bars": 16, "beats_per_bar": 3, "length_seconds": 21.818,
     "loop": {"start_seconds": 0.0, "end_seconds": 21.818},          # null unless the piece loops
     "bars_s": [0.0, 1.3636, ...], "beats_s": [0.0, 0.4545, ...],     # one time per bar, per beat
     "sections": [{"label": "A", "bar": 0, "start_s": 0.0}, ...]}     # where the form's sections start

A beat is one unit of the time signature (a quarter in 3/4, an eighth in 6/8). Times are
exact for the piece's one tempo, rounded to the microsecond.
"""

from __future__ import annotations

import json

from composer.music import tokens as T
from composer.music.grid import Piece

FORMAT = "mozart-beatmap"
FORMAT_VERSION = 1
EXTENSION = "beats.json"
DIGITS = 6  # seconds rounded to the microsecond


def beat_map(piece: Piece) -> dict:
    """The beat map of ``piece`` (whole bars) as JSON-native data."""
    beats, unit = piece.time_signature
    frames_per_beat = T.FRAMES_PER_QUARTER * 4 // unit
    seconds_per_frame = 60.0 / (piece.tempo * T.FRAMES_PER_QUARTER)
    fpb = piece.frames_per_bar
    bars = piece.n_bars

    def at(frame: int) -> float:
        return round(frame * seconds_per_frame, DIGITS)

    length = at(bars * fpb)
    letters = piece.sections if piece.sections and len(piece.sections) == bars else None
    sections = [{"label": letter, "bar": b, "start_s": at(b * fpb)}
                for b, letter in enumerate(letters or []) if b == 0 or letters[b - 1] != letter]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "title": piece.title,
        "tempo": float(piece.tempo),
        "time_signature": [beats, unit],
        "seconds_per_beat": round(frames_per_beat * seconds_per_frame, DIGITS + 3),
        "bars": bars,
        "beats_per_bar": beats,
        "length_seconds": length,
        "loop": {"start_seconds": 0.0, "end_seconds": length} if piece.extra.get("loop") else None,
        "bars_s": [at(b * fpb) for b in range(bars)],
        "beats_s": [at(k * frames_per_beat) for k in range(bars * beats)],
        "sections": sections,
    }


def beat_map_json(piece: Piece) -> bytes:
    """``beat_map`` as UTF-8 JSON (one line per key, short lists kept on one line)."""
    return json.dumps(beat_map(piece), indent=1, ensure_ascii=False).encode()
