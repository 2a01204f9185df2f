"""Sound and pictures: audio (chip synthesiser or General MIDI SoundFont), MIDI, piano roll.

    from composer.render import render, list_sounds
    rendered = render(piece, sound="chip", formats=("mp3", "mid", "png"))

Importing this package is cheap (NumPy only): matplotlib, pydub and the SoundFont
renderer are imported when first needed.
"""

from composer.render.api import AUDIO_FORMATS, DEFAULT_FORMATS, FORMATS, Rendered, render, sound_names, warm_up
from composer.render.presets import DEFAULT_SOUND, SOUNDS, Preset, UnknownSoundError, get_preset, list_sounds

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_FORMATS",
    "DEFAULT_SOUND",
    "FORMATS",
    "SOUNDS",
    "Preset",
    "Rendered",
    "UnknownSoundError",
    "get_preset",
    "list_sounds",
    "render",
    "sound_names",
    "warm_up",
]
