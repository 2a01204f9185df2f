"""Grid symbols: the one place that says what a cell of the multi-voice grid means.

A piece is a grid of 16th-note frames x five voice roles. Every cell holds one small
integer token:

* pitched voices (lead, counter, harmony, bass): ``REST``, ``HOLD`` (the previous note
  continues) or ``onset(pitch)`` for a MIDI pitch in ``PITCH_MIN..PITCH_MAX``;
* the drum voice: ``REST`` or one drum class (``DRUM_CLASSES``).

The model adds one more input symbol, ``MASK`` (a hidden cell), per vocabulary.
"""

from __future__ import annotations

import numpy as np

VOICES: tuple[str, ...] = ("lead", "counter", "harmony", "bass", "drums")
PITCHED_VOICES: tuple[str, ...] = VOICES[:4]
N_VOICES = len(VOICES)
DRUM_VOICE = VOICES.index("drums")
VOICE_INDEX = {name: i for i, name in enumerate(VOICES)}

FRAMES_PER_QUARTER = 4  # 16th-note grid

# Pitched vocabulary: 0 rest, 1 hold, 2.. onsets of MIDI pitches 21 (A0) to 108 (C8).
REST = 0
HOLD = 1
PITCH_MIN = 21
PITCH_MAX = 108
PITCH_OFFSET = 2
PITCHED_VOCAB = PITCH_OFFSET + PITCH_MAX - PITCH_MIN + 1  # 90

# Drum vocabulary: 0 rest, then one token per drum class.
DRUM_CLASSES: tuple[str, ...] = ("kick", "snare", "hat", "open_hat", "tom", "cymbal", "perc")
DRUM_VOCAB = 1 + len(DRUM_CLASSES)  # 8

VOCAB_SIZES: tuple[int, ...] = (PITCHED_VOCAB,) * 4 + (DRUM_VOCAB,)

# General MIDI percussion keys -> drum class (anything else on channel 10 -> "perc").
_GM_DRUMS = {
    "kick": (35, 36),
    "snare": (37, 38, 39, 40),
    "hat": (42, 44),
    "open_hat": (46,),
    "tom": (41, 43, 45, 47, 48, 50),
    "cymbal": (49, 51, 52, 53, 55, 57, 59),
}
# When several drums hit one frame the grid keeps one: the most important for the groove.
DRUM_PRIORITY: tuple[str, ...] = ("kick", "snare", "tom", "cymbal", "open_hat", "hat", "perc")
# The GM key written back on export for each class.
DRUM_EXPORT_KEY = {"kick": 36, "snare": 38, "hat": 42, "open_hat": 46, "tom": 45, "cymbal": 49, "perc": 56}


def onset(pitch: int) -> int:
    """Token for a note of MIDI ``pitch`` starting in this frame."""
    if not PITCH_MIN <= pitch <= PITCH_MAX:
        raise ValueError(f"pitch {pitch} is outside the grid's range {PITCH_MIN}..{PITCH_MAX}")
    return PITCH_OFFSET + pitch - PITCH_MIN


def is_onset(token) -> np.ndarray | bool:
    return token >= PITCH_OFFSET


def pitch_of(token) -> np.ndarray | int:
    """MIDI pitch of an onset token (undefined for REST/HOLD)."""
    return token - PITCH_OFFSET + PITCH_MIN


def drum_token(name: str) -> int:
    return 1 + DRUM_CLASSES.index(name)


def drum_name(token: int) -> str:
    return DRUM_CLASSES[token - 1]


def drum_class_of_gm_key(key: int) -> str:
    for name, keys in _GM_DRUMS.items():
        if key in keys:
            return name
    return "perc"


def token_name(voice: int, token: int) -> str:
    """Human-readable token, for debugging and error messages."""
    if token == REST:
        return "rest"
    if voice == DRUM_VOICE:
        return drum_name(token)
    if token == HOLD:
        return "hold"
    return f"on{pitch_of(token)}"
