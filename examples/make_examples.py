"""Writes the example MIDI files in this folder (run from the repository root:
``python examples/make_examples.py``). examples/README.md says where each tune comes from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mido

HERE = Path(__file__).resolve().parent
TICKS = 480  # per quarter note

# Beethoven's "Ode to Joy" (Symphony No. 9, 1824), in D major: (MIDI pitch, quarter notes) per bar.
D4, E4, Fs4, G4, A4, A3 = 62, 64, 66, 67, 69, 57
ODE_MELODY = [
    [(Fs4, 1), (Fs4, 1), (G4, 1), (A4, 1)], [(A4, 1), (G4, 1), (Fs4, 1), (E4, 1)],
    [(D4, 1), (D4, 1), (E4, 1), (Fs4, 1)], [(Fs4, 1.5), (E4, 0.5), (E4, 2)],
    [(Fs4, 1), (Fs4, 1), (G4, 1), (A4, 1)], [(A4, 1), (G4, 1), (Fs4, 1), (E4, 1)],
    [(D4, 1), (D4, 1), (E4, 1), (Fs4, 1)], [(E4, 1.5), (D4, 0.5), (D4, 2)],
    [(E4, 1), (E4, 1), (Fs4, 1), (D4, 1)], [(E4, 1), (Fs4, 0.5), (G4, 0.5), (Fs4, 1), (D4, 1)],
    [(E4, 1), (Fs4, 0.5), (G4, 0.5), (Fs4, 1), (E4, 1)], [(D4, 1), (E4, 1), (A3, 2)],
    [(Fs4, 1), (Fs4, 1), (G4, 1), (A4, 1)], [(A4, 1), (G4, 1), (Fs4, 1), (E4, 1)],
    [(D4, 1), (D4, 1), (E4, 1), (Fs4, 1)], [(E4, 1.5), (D4, 0.5), (D4, 2)],
]
# a bass line of roots in half notes: I and V, with IV where the tune leans on it
D2, G2, A2 = 38, 43, 45
ODE_BASS = ["DD", "AA", "DG", "AA", "DD", "AA", "DG", "AD", "AD", "AD", "AD", "GA", "DD", "AA", "DG", "AD"]
KICK, SNARE, HAT, CRASH = 36, 38, 42, 49


def _track(name: str, channel: int, program: int | None, notes: list[tuple[float, float, int]]) -> mido.MidiTrack:
    """A track of (start, length, pitch) notes in quarter notes."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    if program is not None:
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    events = sorted([(round(s * TICKS), 1, p) for s, _, p in notes] + [(round((s + n) * TICKS) - 1, 0, p)
                                                                      for s, n, p in notes])
    now = 0
    for tick, on, pitch in events:
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, channel=channel, note=pitch, velocity=90 if on else 0, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def ode_to_joy() -> mido.MidiFile:
    melody, beat = [], 0.0
    for bar in ODE_MELODY:
        for pitch, length in bar:
            melody.append((beat, length, pitch))
            beat += length
    roots = {"D": D2, "G": G2, "A": A2}
    bass = [(4 * b + 2 * h, 2, roots[r]) for b, bar in enumerate(ODE_BASS) for h, r in enumerate(bar)]
    drums = []
    for b in range(len(ODE_MELODY)):
        drums += [(4 * b + e / 2, 0.25, HAT) for e in range(8)]
        drums += [(4 * b, 0.25, KICK), (4 * b + 2, 0.25, KICK), (4 * b + 1, 0.25, SNARE), (4 * b + 3, 0.25, SNARE)]
    drums.append((0, 0.5, CRASH))
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
                           mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
                           mido.MetaMessage("end_of_track", time=0)])
    return mido.MidiFile(type=1, ticks_per_beat=TICKS, tracks=[
        meta, _track("melody", 0, 73, melody), _track("bass", 1, 33, bass), _track("drums", 9, None, drums)])


def soldiers_joy() -> None:
    """The reel as O'Neill printed it (music21's corpus: oneills1850/1625-1700.abc, tune 1642), repeats
    played, read by Mozart's own score reader (its pickup ends on the first bar line) and written as MIDI."""
    from music21 import corpus

    from composer.music.midi_io import write_midi
    from composer.music.music21_io import from_stream

    opus = corpus.parse("oneills1850/1625-1700.abc")
    score = next(s for s in opus.scores if s.metadata.title == "The Soldier's Joy").expandRepeats()
    write_midi(from_stream(score, title="The Soldier's Joy"), HERE / "soldiers-joy.mid")


def main() -> None:
    ode_to_joy().save(HERE / "ode-to-joy.mid")
    soldiers_joy()
    # Mozart's own: a 16-bar piece in 3/4 from the shipped model
    subprocess.run([sys.executable, "-m", "composer", "compose", "--style", "bach", "--bars", "16",
                    "--time-signature", "3/4", "--seed", "3", "--midi-only", "--out", str(HERE)], check=True)
    (HERE / "bach-3.mid").replace(HERE / "generated-bach-3-4.mid")
    for path in sorted(HERE.glob("*.mid")):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
