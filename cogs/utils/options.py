"""Slash-command options built from ``GenerationRequest``'s declarations.

A command still names its parameters in its signature (that is how discord.py reads them),
but every range, default, choice and description comes from composer/generate/request.py:

    @app_commands.describe(**describe("style", "bars"))
    @app_commands.choices(form=choices("form"))
    async def compose(self, interaction, style: str, bars: BARS = default("bars")): ...
"""

from __future__ import annotations

from typing import Any

from discord import app_commands

from composer.generate.layers import LAYERS
from composer.render.presets import DEFAULT_SOUND, SOUNDS
from composer.generate.request import GenerationRequest, Spec
from composer.generate.stingers import STINGERS

DESCRIPTION_LIMIT = 100  # Discord's limit for option descriptions and choice names


def _spec(name: str) -> Spec:
    return GenerationRequest.specs()[name]


def default(name: str) -> Any:
    return GenerationRequest.default(name)


def bounded(name: str) -> Any:
    """``app_commands.Range`` over the parameter's declared bounds."""
    spec = _spec(name)
    return app_commands.Range[spec.kind, spec.kind(spec.low), spec.kind(spec.high)]


def describe(*names: str, **extra: str) -> dict[str, str]:
    """Option descriptions (Discord shows them under each option)."""
    return {**{n: _spec(n).help[:DESCRIPTION_LIMIT] for n in names}, **extra}


def choice_list(options: dict[str, str]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=(f"{value} — {text}" if value else text)[:DESCRIPTION_LIMIT], value=value)
            for value, text in options.items()]


def choices(name: str) -> list[app_commands.Choice[str]]:
    """The declared choices (or suggested values) of a parameter, each with what it means."""
    spec = _spec(name)
    return choice_list(dict(spec.choices or spec.suggestions))


SOUND_CHOICES = choice_list({name: preset.description for name, preset in SOUNDS.items()})
SOUND_HELP = "How it sounds in the MP3"
VIDEO_HELP = "Also post a video (MP4): the piano roll scrolling with the music"
SCORE_HELP = "Also post the sheet music: its first page, and MusicXML for MuseScore"
LAYERS_HELP = f"Also post it at {', '.join(LAYERS)} intensity, bar for bar (a zip each), for a game"[:DESCRIPTION_LIMIT]
STINGER_HELP = "Also post a 1-2 bar jingle in its key, tempo and style"
STINGER_CHOICES = choice_list({name: stinger.description for name, stinger in STINGERS.items()})

# The ranged options the commands offer.
BARS = bounded("bars")
TEMPO = bounded("tempo")
TEMPERATURE = bounded("temperature")
SEED = bounded("seed")
STRENGTH = bounded("strength")
__all__ = ["BARS", "DEFAULT_SOUND", "LAYERS_HELP", "SCORE_HELP", "SEED", "SOUND_CHOICES", "SOUND_HELP",
           "STINGER_CHOICES", "STINGER_HELP", "STRENGTH", "TEMPERATURE", "TEMPO", "VIDEO_HELP", "choice_list",
           "choices", "default", "describe"]
