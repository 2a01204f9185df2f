"""Loop points where game engines look for them: Ogg comments, a WAV ``smpl`` chunk, MIDI markers.

A looping piece (``GenerationRequest.loop``) is exported so that its end leads back into its
start without a gap (``render.api.shape_end``); these say so inside each file, in the forms
engines and samplers read:

* Ogg Vorbis: the comments ``LOOPSTART`` and ``LOOPLENGTH``, in samples (RPG Maker MV/MZ, and
  the many players and engines that copied it);
* WAV: a ``smpl`` chunk (the RIFF sampler chunk of the Multimedia Programming Interface and
  Data Specifications 1.0, 1991) with one forward loop, its end the loop's last sample
  (inclusive, as the specification says);
* MIDI: the markers ``loopStart`` and ``loopEnd`` and a controller 111 at the loop's start
  (RPG Maker's loop marker; the end of the file is the loop's end): ``midi_io.end_midi_at``.

The loop is the whole piece: from sample 0 (tick 0) to the last bar line.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SMPL_UNITY_NOTE = 60  # a smpl chunk names the note its sample plays at its own pitch


@dataclass(frozen=True)
class LoopPoints:
    """A loop in samples: it starts at ``start`` and lasts ``length`` samples."""

    start: int
    length: int

    @property
    def end(self) -> int:
        """The sample after the loop's last one (``start + length``)."""
        return self.start + self.length

    def vorbis_comments(self) -> dict[str, str]:
        """``LOOPSTART`` and ``LOOPLENGTH``, as RPG Maker reads them from an Ogg file."""
        return {"LOOPSTART": str(self.start), "LOOPLENGTH": str(self.length)}


def with_smpl_chunk(wav: bytes, loop: LoopPoints, rate: int) -> bytes:
    """``wav`` (a RIFF WAVE file) with a ``smpl`` chunk holding ``loop`` appended, and the
    RIFF size updated."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("not a RIFF WAVE file")
    header = struct.pack("<9I", 0, 0, round(1e9 / rate), SMPL_UNITY_NOTE, 0, 0, 0, 1, 0)  # one loop, no extra data
    # cue point id, type 0 (forward), start, end (the loop's last sample), fraction, play count 0 (forever)
    loops = struct.pack("<6I", 0, 0, loop.start, loop.end - 1, 0, 0)
    body = header + loops
    chunk = b"smpl" + struct.pack("<I", len(body)) + body
    if len(wav) % 2:  # RIFF chunks start on even offsets
        wav += b"\0"
    out = wav + chunk
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]
