"""Sound presets: the one place that says which sounds exist and how each voice sounds.

A preset is either the built-in ``chip`` synthesiser or a General MIDI SoundFont
rendering with one GM program per voice. The bot lists them with ``list_sounds()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from composer.music import tokens as T
from composer.errors import RenderError


class UnknownSoundError(RenderError, ValueError):
    """A sound name that is not one of ``SOUNDS``."""


@dataclass(frozen=True)
class Preset:
    name: str  # what users type: /compose sound:orchestra
    description: str  # one line for /sounds and --help
    engine: str  # "chip" (NumPy synthesiser) or "soundfont" (midirenderer + .sf2)
    programs: dict[str, int] = field(default_factory=dict)  # voice -> 0-based GM program (drums: kit)
    volumes: dict[str, int] = field(default_factory=dict)  # voice -> GM channel volume (CC 7), 0..127

    def __post_init__(self) -> None:
        if self.engine not in ("chip", "soundfont"):
            raise ValueError(f"engine must be 'chip' or 'soundfont' (received {self.engine!r})")
        unknown = (set(self.programs) | set(self.volumes)) - set(T.VOICES)
        if unknown:
            raise ValueError(f"unknown voices in preset {self.name!r}: {sorted(unknown)}")


# name -> (description, engine, GM program per voice, channel volume per voice); voices in
# T.VOICES order. Chip: the MIDI written beside the audio still needs programs; square leads
# and a synth bass are the closest GM sounds to the pulse/triangle channels. Orchestra: flute,
# clarinet, harp, cello, standard kit (String Ensemble 1 as harmony costs TimGM6mb twice the
# render time of all else together: its long releases pile up).
CHIP = "chip"  # the NumPy synthesiser's sound: the default, and the fallback when a SoundFont fails
_TABLE = {
    CHIP: ("8-bit console: pulse-wave melody and harmony, triangle bass, noise drums (default).",
             "chip", (80, 80, 80, 38, 0), None),
    "orchestra": ("Small orchestra: flute, clarinet, harp, cello and drum kit (General MIDI).",
                  "soundfont", (73, 71, 46, 42, 0), (110, 100, 80, 90, 105)),
    "piano": ("Solo piano for every pitched voice, with a light drum kit (General MIDI).",
              "soundfont", (0, 0, 0, 0, 0), (115, 100, 95, 100, 70)),
}
SOUNDS: dict[str, Preset] = {
    name: Preset(name, description, engine, dict(zip(T.VOICES, programs)), dict(zip(T.VOICES, volumes or ())))
    for name, (description, engine, programs, volumes) in _TABLE.items()
}
DEFAULT_SOUND = CHIP


def list_sounds() -> list[Preset]:
    """All presets, default first (for /sounds and the CLI's --sound choices)."""
    return list(SOUNDS.values())


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive), or ``UnknownSoundError`` listing the sounds."""
    key = (name or "").strip().lower()
    if key in SOUNDS:
        return SOUNDS[key]
    raise UnknownSoundError(f"Unknown sound {name!r}. Known sounds: {', '.join(SOUNDS)}.")
