"""Exceptions Mozart raises on bad input.

Every ``MozartError`` message is written for the person who caused it (a bot user or a
CLI user): it says what is wrong and, where possible, what to do instead. The bot shows
these messages as they are; anything else is a bug and is logged, not shown.
"""

from __future__ import annotations


class MozartError(Exception):
    """Base class for errors whose message is safe and useful to show to a user."""


class MidiImportError(MozartError, ValueError):
    """A MIDI (or score) file could not be turned into a grid."""


class CorruptMidiError(MidiImportError):
    """The file is not a readable MIDI file (truncated, wrong format, garbage)."""


class EmptyMidiError(MidiImportError):
    """The file is valid but holds no notes at all."""


class DrumsOnlyError(MidiImportError):
    """The file holds only percussion: there is no melody or harmony to work with."""


class MidiTooLargeError(MidiImportError):
    """The file exceeds a size, note-count or duration cap that bounds time and memory."""


class TranspositionError(MozartError, ValueError):
    """A transposition would move notes outside the grid's pitch range."""


class UnknownStyleError(MozartError, KeyError):
    """A style name the loaded model was not trained on."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class GenerationParameterError(MozartError, ValueError):
    """A generation parameter is out of range (bars, tempo, temperature...)."""


class CheckpointError(MozartError):
    """A model checkpoint is missing, incomplete or from an incompatible version."""


class RenderError(MozartError):
    """Audio or image rendering failed for a reason the user can act on."""
