"""Sound presets: the one place that says which sounds exist and how each voice sounds.

A preset is either the built-in ``chip`` synthesiser or a General MIDI SoundFont
rendering with one GM program per voice. The bot lists them with ``list_sounds()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from composer import tokens as T
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


# Chip: the MIDI written beside the audio still needs programs; square leads and a
# synth bass are the closest GM sounds to the pulse/triangle channels.
SOUNDS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "chip",
            "8-bit console: pulse-wave melody and harmony, triangle bass, noise drums (default).",
            "chip",
            {"lead": 80, "counter": 80, "harmony": 80, "bass": 38, "drums": 0},
        ),
        Preset(
            "orchestra",
            "Small orchestra: flute, clarinet, harp, cello and drum kit (General MIDI).",
            "soundfont",
            # flute, clarinet, harp, cello, standard kit. (String Ensemble 1 as harmony costs
            # TimGM6mb twice the render time of all else together: its long releases pile up.)
            {"lead": 73, "counter": 71, "harmony": 46, "bass": 42, "drums": 0},
            {"lead": 110, "counter": 100, "harmony": 80, "bass": 90, "drums": 105},
        ),
        Preset(
            "piano",
            "Solo piano for every pitched voice, with a light drum kit (General MIDI).",
            "soundfont",
            {"lead": 0, "counter": 0, "harmony": 0, "bass": 0, "drums": 0},
            {"lead": 115, "counter": 100, "harmony": 95, "bass": 100, "drums": 70},
        ),
    )
}
DEFAULT_SOUND = "chip"


def list_sounds() -> list[Preset]:
    """All presets, default first (for /sounds and the CLI's --sound choices)."""
    return list(SOUNDS.values())


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive), or ``UnknownSoundError`` listing the sounds."""
    key = (name or "").strip().lower()
    if key in SOUNDS:
        return SOUNDS[key]
    raise UnknownSoundError(f"Unknown sound {name!r}. Known sounds: {', '.join(SOUNDS)}.")
