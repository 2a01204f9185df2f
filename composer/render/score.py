"""Sheet music: the piece as MusicXML (written with music21) and its first page engraved as a PNG.

    xml = musicxml(piece)         # every pitched voice, for MuseScore and other notation programs
    png = score_png(piece)        # the first page: lead and bass, or every pitched voice if they fit

The engraver is verovio: a wheel on PyPI (no system package, no subprocess), maintained by the
RISM/Music Encoding Initiative community, that reads MusicXML and lays out a page in a fraction
of a second. LilyPond (a Debian package) engraves more beautifully, but it is a separate program
of some 100 MB that needs MusicXML converted first (musicxml2ly) and takes seconds per score.
Verovio draws an SVG; resvg (the resvg-py wheel) turns it into a PNG with no Cairo or system fonts
(matplotlib's bundled DejaVu serves the text).

Drums are left out: the grid keeps seven drum classes, not the notes a drummer reads, and a
percussion staff would take a page's room from the tune. The MIDI carries them.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import numpy as np

from composer.music import tokens as T
from composer.errors import RenderError
from composer.music.grid import Piece, parse_key
from composer.render.pianoroll import note_arrays

PAGE_STAFF_BARS = 40  # staves x bars one page holds legibly: every voice of a short piece, lead + bass of a long one
PAGE_WIDTH = 2100  # verovio units (tenths of a mm at scale 100): A4
PAGE_HEIGHT = 2970
SCALE = 40  # percent: staff size on the page
PNG_ZOOM = 1.0
BASS_CLEF_BELOW = 55  # a voice whose median pitch is below G3 is written in the bass clef (a lead around middle C stays treble)

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")
_verovio_lock = threading.Lock()  # one toolkit, one layout at a time


# -- which voices ------------------------------------------------------------------------------
def sounding_voices(piece: Piece) -> list[int]:
    """Pitched voices with at least one note, top to bottom."""
    return [v for v in range(len(T.PITCHED_VOICES)) if T.is_onset(piece.grid[:, v]).any()]


def page_voices(piece: Piece) -> list[int]:
    """The voices the first page shows: all of them if the piece fits a page so, else the top and the bass."""
    voices = sounding_voices(piece)
    if len(voices) * piece.n_bars <= PAGE_STAFF_BARS or len(voices) <= 2:
        return voices
    return [voices[0], voices[-1]]


# -- the music21 score ---------------------------------------------------------------------------
def _m21_key(piece: Piece):
    """The piece's key as a music21 Key, its tonic named as the key signature writes it (F# major, Eb minor)."""
    from music21 import key

    if not piece.key:
        return None
    try:
        pc, mode = parse_key(piece.key)
    except Exception:  # a key we cannot read is left out, not guessed
        return None
    sharp_side = (7, 2, 9, 4, 11, 6) if mode == "major" else (4, 11, 6, 1, 8)
    return key.Key((_SHARP_NAMES if pc in sharp_side else _FLAT_NAMES)[pc], mode)


def _speller(k):
    """MIDI pitch -> music21 Pitch named for key ``k``: the scale's own names (and a minor key's
    raised sixth and seventh), other notes with sharps in sharp keys and flats in flat keys."""
    from music21 import pitch

    names: dict[int, str] = {}
    if k is not None:
        for p in k.getScale(k.mode).getPitches("C4", "B4"):
            names[p.pitchClass] = p.name
        if k.mode == "minor":
            for semitones in (9, 11):
                p = k.tonic.transpose(semitones)
                names.setdefault(p.pitchClass, p.name)
    default = _FLAT_NAMES if k is not None and k.sharps < 0 else _SHARP_NAMES

    def spell(midi: int):
        p = pitch.Pitch(names.get(midi % 12, default[midi % 12]))
        p.octave = 4
        p.octave += (midi - int(p.midi)) // 12  # B#, Cb: the name's octave is not the sounding one's
        return p

    return spell


NOTATABLE = (16, 12, 8, 6, 4, 3, 2, 1)  # 16ths a single note or rest can last: whole, dotted half ... sixteenth


def bar_events(onsets, ends, pitches, bar_frames: int, n_bars: int) -> list[list[tuple[int, int | None, str | None]]]:
    """Per bar, its notes and rests as (16ths, MIDI pitch or None for a rest, tie), notes cut at bar lines
    and into lengths a single note can have (5 sixteenths: a quarter tied to a sixteenth)."""
    events, cursor = [], 0
    for onset, end, midi in zip(onsets, ends, pitches):
        if onset > cursor:
            events.append((cursor, onset, None))
        events.append((onset, end, int(midi)))
        cursor = end
    if cursor < n_bars * bar_frames:
        events.append((cursor, n_bars * bar_frames, None))
    bars: list[list] = [[] for _ in range(n_bars)]
    for start, end, midi in events:
        pieces = []
        while start < end:
            bar_end = (start // bar_frames + 1) * bar_frames
            length = min(end, bar_end) - start
            for size in NOTATABLE if midi is not None or length != bar_frames else (length,):
                while length >= size:
                    pieces.append((start, size))
                    start, length = start + size, length - size
        for k, (at, size) in enumerate(pieces):
            tie = None
            if midi is not None and len(pieces) > 1:
                tie = "start" if k == 0 else "stop" if k == len(pieces) - 1 else "continue"
            bars[at // bar_frames].append((size, midi, tie))
    return bars


def to_m21(piece: Piece, voices: list[int] | None = None, bars: int | None = None):
    """A music21 Score of ``voices`` (default: every sounding pitched voice), first ``bars`` bars.

    The measures, ties, durations and accidentals are made here, from the grid, rather than by
    music21's ``makeNotation``: the grid already says all of it, and this is ~5x faster."""
    from music21 import bar, clef, metadata, meter, note, pitch, stream, tempo, tie

    voices = sounding_voices(piece) if voices is None else voices
    if not voices:
        raise RenderError("This piece has no pitched notes to write as a score.")
    bar_frames = piece.frames_per_bar
    n_bars = piece.n_bars if bars is None else min(piece.n_bars, bars)
    frames = min(piece.n_frames, n_bars * bar_frames)
    fpq = T.FRAMES_PER_QUARTER
    numerator, denominator = piece.time_signature
    k = _m21_key(piece)
    spell = _speller(k)
    signature = {step: (k.accidentalByStep(step).alter if k is not None and k.accidentalByStep(step) else 0.0)
                 for step in "CDEFGAB"}

    score = stream.Score()
    score.metadata = metadata.Metadata(title=piece.title or "Mozart", composer="Mozart")
    for index, v in enumerate(voices):
        onsets, ends, pitches = note_arrays(piece, v)
        keep = onsets < frames
        part = stream.Part(id=T.PITCHED_VOICES[v])
        part.partName = T.PITCHED_VOICES[v].capitalize()
        low = keep.any() and float(np.median(pitches[keep])) < BASS_CLEF_BELOW
        for number, events in enumerate(bar_events(onsets[keep].tolist(), np.minimum(ends[keep], frames).tolist(),
                                                    pitches[keep].tolist(), bar_frames, n_bars), start=1):
            measure = stream.Measure(number=number)
            if number == 1:
                measure.append(clef.BassClef() if low else clef.TrebleClef())
                if k is not None:
                    measure.append(k.__class__(k.tonic.name, k.mode))
                measure.append(meter.TimeSignature(f"{numerator}/{denominator}"))
                if index == 0:
                    measure.append(_metronome(piece, tempo, note))
            altered = dict()  # (step, octave) -> alter shown so far in this bar
            for size, midi, tied in events:
                if midi is None:
                    element = note.Rest(quarterLength=size / fpq)
                    element.fullMeasure = size == bar_frames
                else:
                    element = note.Note(quarterLength=size / fpq)
                    element.pitch = spelled = spell(midi)
                    alter = spelled.accidental.alter if spelled.accidental else 0.0
                    where = (spelled.step, spelled.octave)
                    if tied in ("stop", "continue"):  # a tied-over note shows no accidental
                        if spelled.accidental is not None:
                            spelled.accidental.displayStatus = False
                    elif altered.get(where, signature[spelled.step]) != alter:
                        spelled.accidental = pitch.Accidental(alter)  # natural when alter is 0
                        spelled.accidental.displayStatus = True
                        altered[where] = alter
                    elif spelled.accidental is not None:
                        spelled.accidental.displayStatus = False
                    if tied:
                        element.tie = tie.Tie(tied)
                measure.append(element)
            part.append(measure)
        part.makeBeams(inPlace=True)
        measures = part.getElementsByClass("Measure")
        if piece.extra.get("loop"):
            measures[0].leftBarline = bar.Repeat(direction="start")
            measures[-1].rightBarline = bar.Repeat(direction="end")
        else:
            measures[-1].rightBarline = bar.Barline("final")
        score.insert(0, part)
    return score


def _metronome(piece: Piece, tempo, note):
    """Quarter = tempo; in compound metres (6/8, 9/8, 12/8) dotted quarter = tempo / 1.5, as players read it."""
    numerator, denominator = piece.time_signature
    if denominator == 8 and numerator % 3 == 0:
        return tempo.MetronomeMark(number=round(piece.tempo / 1.5), referent=note.Note(type="quarter", dots=1))
    return tempo.MetronomeMark(number=round(piece.tempo), referent=note.Note(type="quarter"))


def _xml_bytes(score) -> bytes:
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    exporter = GeneralObjectExporter(score)
    exporter.makeNotation = False  # to_m21 made the measures, ties, beams and accidentals
    return exporter.parse()


def musicxml(piece: Piece) -> bytes:
    """The whole piece as MusicXML: one part per sounding pitched voice."""
    return _xml_bytes(to_m21(piece))


# -- engraving -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _toolkit():
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    toolkit.setOptions({"pageWidth": PAGE_WIDTH, "pageHeight": PAGE_HEIGHT, "scale": SCALE, "adjustPageHeight": True,
                        "header": "none", "footer": "none", "breaks": "auto", "font": "Leipzig"})
    return toolkit


@functools.lru_cache(maxsize=1)
def _text_font_dir() -> str:
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")


def _cache_dir() -> Path:
    """$XDG_CACHE_HOME/mozart (~/.cache/mozart), or the temporary folder where home is read-only."""
    import tempfile

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mozart"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        return Path(tempfile.gettempdir())


@functools.lru_cache(maxsize=1)
def _music_font() -> str:
    """Verovio's Leipzig font as an OpenType file, for the note glyph of the tempo mark.

    Verovio ships it only as WOFF2 inside a CSS file, which resvg cannot read; fontTools (a
    matplotlib dependency) unpacks it once, into the cache folder, ~0.7 s."""
    import base64
    import io
    import re

    import verovio
    from fontTools.ttLib import TTFont

    path = _cache_dir() / f"Leipzig-verovio-{verovio.toolkit().getVersion()}.otf"
    if not path.exists():
        css = (Path(verovio.__file__).parent / "data" / "Leipzig.css").read_text()
        font = TTFont(io.BytesIO(base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", css).group(1))))
        font.flavor = None
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        font.save(str(partial))
        partial.replace(path)  # atomic: two processes may convert at once
    return str(path)


def engrave(xml: bytes) -> bytes:
    """PNG bytes of the first page of a MusicXML score."""
    import resvg_py

    with _verovio_lock:
        toolkit = _toolkit()
        if not toolkit.loadData(xml.decode("utf-8")):
            raise RenderError("The score could not be engraved (verovio refused the MusicXML).")
        svg = toolkit.renderToSVG(1)
    png = resvg_py.svg_to_bytes(svg_string=svg, background="white", skip_system_fonts=True,
                                font_dirs=[_text_font_dir()], font_files=[_music_font()],
                                serif_family="DejaVu Serif", sans_serif_family="DejaVu Sans", font_family="DejaVu Serif",
                                zoom=PNG_ZOOM)
    return bytes(png)


def score_png(piece: Piece) -> bytes:
    """The first page of the score as a PNG: ``page_voices``, only the bars a page can hold."""
    voices = page_voices(piece)
    bars = max(1, PAGE_STAFF_BARS // max(1, len(voices)))
    return engrave(_xml_bytes(to_m21(piece, voices, bars)))
