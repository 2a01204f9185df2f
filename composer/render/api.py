"""``render()``: the one entry point that the bot and the CLI share.

    rendered = render(piece, sound="orchestra", formats=("mp3", "mid", "png"))
    discord.File(io.BytesIO(rendered["mp3"]), filename=rendered.filename("mp3"))

Audio and the piano roll are made concurrently: synthesis first, then each audio format
(and the video) encodes in an ffmpeg subprocess (one worker thread each) while the calling
thread draws the piano roll. Everything that can fail for a user-fixable reason raises ``RenderError``.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from composer.music import tokens as T
from composer.errors import RenderError
from composer.music.grid import Piece
from composer.render import audio as A
from composer.render import score
from composer.render.beatmap import EXTENSION as BEATS_EXTENSION
from composer.render.beatmap import beat_map_json
from composer.render.chip import TAIL_SECONDS, ChipSynth, frame_samples
from composer.render.loop_points import LoopPoints, with_smpl_chunk
from composer.render.presets import CHIP, DEFAULT_SOUND, SOUNDS, Preset, get_preset
from composer.render.video import MAX_SECONDS as MAX_VIDEO_SECONDS
from composer.render.video import encode_mp4

log = logging.getLogger(__name__)

AUDIO_FORMATS = ("mp3", "ogg", "wav")
VIDEO_FORMAT = "mp4"  # the piano roll scrolling under a playhead, with the audio (render/video.py)
SCORE_FORMATS = ("score", "musicxml")  # the first page engraved (PNG), the whole score for notation programs
BEATS_FORMAT = "beats"  # the beat map (render/beatmap.py): made beside the MIDI, whenever the MIDI is
FORMATS = ("mp3", "mid", "png", "ogg", "wav", "stems", VIDEO_FORMAT, BEATS_FORMAT, *SCORE_FORMATS)
EXTENSIONS = {"stems": "stems.zip", BEATS_FORMAT: BEATS_EXTENSION, "score": "score.png"}  # format -> file name ending, where they differ
LOOP_FORMATS = ("ogg", "wav")  # audio that carries loop points (render/loop_points.py), besides the MIDI
STEM_FORMAT = "ogg"  # each voice in the stems zip: small, and game engines (Unity, Godot) load it
DEFAULT_FORMATS = ("mp3", "mid", "png")


def piece_formats(*, video: bool = False, score: bool = False, loop: tuple[str, ...] = (), stems: bool = False
                  ) -> tuple[str, ...]:
    """What to render for a piece, for the bot's post and the command line alike: MP3, MIDI and piano roll,
    then the audio that carries loop points (``loop``, e.g. ``LOOP_FORMATS``), the stems, the video and the
    score when asked for."""
    return (DEFAULT_FORMATS + tuple(loop) + (("stems",) if stems else ()) + ((VIDEO_FORMAT,) if video else ())
            + (SCORE_FORMATS if score else ()))
MIDI_VOLUME = 100  # GM channel volume (CC 7) of a voice whose preset names none

_chip = ChipSynth()


@dataclass
class Rendered:
    """What ``render`` made: bytes per format, files when asked, and how long it took."""

    data: dict[str, bytes]  # format ("mp3", "mid", "png", "mp4"...) -> file contents
    paths: dict[str, Path] = field(default_factory=dict)  # format -> file written (with out_dir)
    sound: str = DEFAULT_SOUND  # the sound actually used (chip after a SoundFont fallback)
    requested_sound: str = DEFAULT_SOUND  # the sound asked for
    seconds: float = 0.0  # audio length, tail included
    music_seconds: float = 0.0  # the piece itself: bars x beats at its tempo
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds; "total" = wall time
    warnings: list[str] = field(default_factory=list)  # messages for the user (e.g. a fallback)
    basename: str = "piece"  # file name stem used for paths and filename()
    gain: float | None = None  # the mastering gain the audio got (None: silence, or no audio)
    loop: LoopPoints | None = None  # where the audio loops, in samples, when the piece loops

    def __getitem__(self, fmt: str) -> bytes:
        return self.data[fmt]

    def __contains__(self, fmt: str) -> bool:
        return fmt in self.data

    def filename(self, fmt: str) -> str:
        return f"{self.basename}.{EXTENSIONS.get(fmt, fmt)}"


def sound_names() -> list[str]:
    return list(SOUNDS)


def warm_up(soundfont: bool = True) -> None:
    """Pay one-off costs now (e.g. at bot start-up) rather than on the first request.

    Builds the chip's wavetables and drum samples, imports matplotlib (~0.3 s) and reads
    the SoundFont (a missing one only logs here; ``render`` falls back to chip).
    """
    _chip.render(Piece.empty(1))
    from composer.render.pianoroll import warm_up as warm_pianoroll  # noqa: PLC0415

    warm_pianoroll()
    if soundfont:
        from composer.render import soundfont as sf  # noqa: PLC0415

        try:
            sf.load_soundfont(sf.soundfont_path())
        except sf.SoundFontError as e:
            log.warning("SoundFont sounds will fall back to chip: %s", e)


def safe_basename(piece: Piece) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", piece.title or "").strip("._-")
    return stem[:60] or "piece"


def audio_tags(piece: Piece, preset: Preset) -> dict[str, str]:
    """ID3/Vorbis tags: title, artist = the style, seed (TXXX:seed in ID3)."""
    seed = piece.extra.get("seed") if piece.extra else None
    style = " × ".join(piece.labels)
    return {
        "title": piece.title or "Untitled",
        "artist": f"Mozart ({style})" if style else "Mozart",
        "album": "Mozart",
        "genre": "Video Game Music",
        "comment": " ".join(
            part
            for part in (style and f"style {style}", seed is not None and f"seed {seed}", f"sound {preset.name}")
            if part
        ),
        "seed": "" if seed is None else str(seed),
    }


# -- MIDI ----------------------------------------------------------------------------
def preset_midi(piece: Piece, preset: Preset, tail_seconds: float | None = TAIL_SECONDS,
                level_db: float = 0.0) -> bytes:
    """The piece as MIDI with the preset's GM programs and channel volumes (CC 7).

    One track per sounding voice. For synthesis, a final CC 7 on the last track
    ``tail_seconds`` after the music keeps the file open for that long, so the SoundFont
    renderer lets the last notes ring out. ``tail_seconds=None`` is the file people get:
    it ends exactly on the last bar line, so it loops in a game engine or a DAW (with loop
    markers when the piece loops). ``level_db`` turns every channel's volume up or down.
    """
    import symusic  # noqa: PLC0415 - imported by midi_io anyway

    from composer.music.midi_io import TICKS_PER_QUARTER, end_midi_at, to_score  # noqa: PLC0415

    score = to_score(piece, preset.programs)

    def volume(track) -> int:
        return _scaled_volume(preset.volumes.get("drums" if track.is_drum else track.name, MIDI_VOLUME), level_db)

    for track in score.tracks:
        track.controls.append(symusic.ControlChange(0, 7, volume(track)))
    end = piece.n_frames * TICKS_PER_QUARTER // T.FRAMES_PER_QUARTER
    if tail_seconds is None:
        return end_midi_at(bytes(score.dumps_midi()), end, loop=loops(piece))
    if len(score.tracks):
        tail = int(round(tail_seconds * piece.tempo / 60 * TICKS_PER_QUARTER))
        last = score.tracks[-1]
        last.controls.append(symusic.ControlChange(end + tail, 7, volume(last)))
    return bytes(score.dumps_midi())


def _scaled_volume(volume: int, level_db: float) -> int:
    """A GM channel volume ``level_db`` louder or softer: GM's curve is 40 log10(CC7 / 127) dB."""
    if level_db == 0:
        return volume
    return int(min(127, max(1, round(volume * 10 ** (level_db / 40)))))


# -- audio ---------------------------------------------------------------------------
def synthesise(piece: Piece, preset: Preset, midi: bytes | None = None) -> tuple[np.ndarray, int, str, list[str]]:
    """Raw (unmastered) audio: (samples, channels) float32, rate, sound used, warnings.

    A SoundFont that is missing or unreadable falls back to ``chip`` with a warning.
    """
    if preset.engine == "soundfont":
        from composer.render import soundfont as sf  # noqa: PLC0415

        try:
            font = sf.load_soundfont(sf.soundfont_path())
            if not piece.note_count():
                rate = 48000
                return np.zeros((_expected_length(piece, rate), 2), np.float32), rate, preset.name, []
            x, rate = sf.render_midi(midi if midi is not None else preset_midi(piece, preset), font)
            return _fit_length(x, _expected_length(piece, rate)), rate, preset.name, []
        except sf.SoundFontError as e:
            log.warning("SoundFont unusable for the %s sound, falling back to chip: %s", preset.name, e)
            x = _chip.render(piece)
            message = f"The {preset.name} sound is unavailable right now, so this is the chip sound."
            return x, _chip.config.sample_rate, CHIP, [message]
    x = _chip.render(piece)
    return x, _chip.config.sample_rate, preset.name, []


def loops(piece: Piece) -> bool:
    """Whether the piece was composed to loop (``GenerationRequest.loop``)."""
    return bool(piece.extra.get("loop"))


def shape_end(x: np.ndarray, piece: Piece, rate: int) -> np.ndarray:
    """A looping piece's release tail is folded onto its beginning, where it sounds when the
    audio repeats, and the audio ends exactly with the music: no gap, no fade. Others keep
    their tail."""
    if not loops(piece):
        return x
    music = int(frame_samples(piece, rate)[-1])
    x = x.copy()
    tail = x[music:]
    x[: len(tail)] += tail[: music]
    return x[:music]


def _expected_length(piece: Piece, rate: int) -> int:
    return int(frame_samples(piece, rate)[-1]) + int(TAIL_SECONDS * rate)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros((n - len(x), x.shape[1]), x.dtype)])


# -- the entry point -----------------------------------------------------------------
def render(
    piece: Piece,
    sound: str = DEFAULT_SOUND,
    formats: tuple[str, ...] | list[str] = DEFAULT_FORMATS,
    out_dir: str | Path | None = None,
    *,
    basename: str | None = None,
    concurrent: bool = True,
    gain: float | None = None,
    level_db: float = 0.0,
) -> Rendered:
    """Render ``piece`` with ``sound`` (see ``SOUNDS``) to each of ``formats``.

    ``formats``: any of mp3, ogg, wav (audio), mid (MIDI with the preset's GM programs),
    png (piano roll), stems (a zip of one audio file per sounding voice, for mixing), mp4
    (the piano roll scrolling under a playhead, with the audio), score (the first page of the
    sheet music, PNG) and musicxml (the whole score, for MuseScore and other notation programs). With ``out_dir`` the files are also written there as
    ``<basename>.<format>``. Raises ``UnknownSoundError`` (a ``RenderError``) for an
    unknown sound and ``RenderError`` for an unknown format or a missing ffmpeg.
    ``concurrent=False`` does every step in turn on the calling thread (for measuring).

    Whenever the MIDI is made, so is the beat map (``beats``: render/beatmap.py). A looping
    piece's OGG, WAV and MIDI carry loop points (render/loop_points.py). ``gain`` replaces the
    mastering gain (versions of one piece that must keep their relative loudness share one:
    ``Rendered.gain``), and ``level_db`` makes the audio and the MIDI's volumes louder or softer.
    """
    t_start = time.perf_counter()
    preset = get_preset(sound)
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    if "mid" in formats and BEATS_FORMAT not in formats:  # the beat map goes beside the MIDI
        formats = tuple(g for f in formats for g in ((f, BEATS_FORMAT) if f == "mid" else (f,)))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RenderError(f"Unknown format {unknown[0]!r}. Known formats: {', '.join(FORMATS)}.")
    if any(f in ("mp3", "ogg", "stems") for f in formats):
        A.require_ffmpeg()  # fail before any work
    if VIDEO_FORMAT in formats:
        A.require_ffmpeg("Video", prefer_bundled=True)
    piece = piece.pad_to_bars()
    notes = []
    if VIDEO_FORMAT in formats and piece.seconds + TAIL_SECONDS > MAX_VIDEO_SECONDS:
        formats = tuple(f for f in formats if f != VIDEO_FORMAT)  # the rest is still worth having
        notes.append(f"Videos are made of pieces up to {MAX_VIDEO_SECONDS // 60:g} minutes long, "
                     f"so this one ({piece.seconds / 60:.1f} minutes) comes without.")
    result = Rendered(
        data={},
        sound=preset.name,
        requested_sound=preset.name,
        music_seconds=piece.seconds,
        basename=basename or safe_basename(piece),
        warnings=notes,
    )
    timings = result.timings
    audio_formats = [f for f in formats if f in AUDIO_FORMATS]
    encoded = audio_formats + [f for f in formats if f == VIDEO_FORMAT]  # each an ffmpeg run from the PCM

    # Synthesis holds the GIL (NumPy in short bursts, midirenderer throughout), so it runs
    # first; then the encoders run as ffmpeg subprocesses while this thread draws the PNG.
    pool = ThreadPoolExecutor(max(1, len(encoded)), thread_name_prefix="render") if concurrent else _Inline()
    try:
        if "mid" in formats:
            result.data["mid"], timings["mid"] = _timed(preset_midi, piece, preset, None, level_db)
        if BEATS_FORMAT in formats:
            result.data[BEATS_FORMAT] = beat_map_json(piece)
        midi = None  # what the SoundFont renders: with a tail for the last notes' release
        if (encoded or "stems" in formats) and preset.engine == "soundfont":
            midi = preset_midi(piece, preset)

        futures: dict[str, Future] = {}
        if encoded or "stems" in formats:
            t = time.perf_counter()
            x, rate, used, warnings = synthesise(piece, preset, midi)
            x = shape_end(x, piece, rate)
            timings["synth"] = time.perf_counter() - t
            result.sound = used
            result.warnings += warnings
            result.seconds = len(x) / rate
            tags = audio_tags(piece, preset)
            result.gain = A.mastering_gain(x, rate) if gain is None else gain
            if result.gain is not None and level_db:
                result.gain *= A.db_to_gain(level_db)
            result.loop = LoopPoints(0, len(x)) if loops(piece) else None
        if "stems" in formats:
            t = time.perf_counter()
            result.data["stems"] = stems_zip(piece, get_preset(used), len(x), result.gain, tags, result.loop)
            timings["stems"] = time.perf_counter() - t
        if encoded:
            t = time.perf_counter()
            x = A.master(x, rate, copy=False, fade_seconds=0.0 if loops(piece) else A.FADE_SECONDS, gain=result.gain)
            timings["master"] = time.perf_counter() - t
            pcm = A.to_int16(x)  # once for every format, before the PNG competes for the GIL
            del x
            if VIDEO_FORMAT in formats:  # the longest encode starts first
                futures[VIDEO_FORMAT] = pool.submit(_timed, encode_mp4, piece, pcm, rate, tags)
            futures.update({f: pool.submit(_timed, _encode, pcm, rate, f, tags, result.loop) for f in audio_formats})

        if "png" in formats:
            result.data["png"], timings["png"] = _timed(_png, piece)
        if "score" in formats:
            result.data["score"], timings["score"] = _timed(score.score_png, piece)
        if "musicxml" in formats:
            result.data["musicxml"], timings["musicxml"] = _timed(score.musicxml, piece)
        for f, future in futures.items():
            result.data[f], timings[f] = future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    # keep the caller's order
    result.data = {f: result.data[f] for f in formats}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for f, data in result.data.items():
            path = out / result.filename(f)
            path.write_bytes(data)
            result.paths[f] = path
    timings["total"] = time.perf_counter() - t_start
    return result


def stems_zip(piece: Piece, preset: Preset, length: int, gain: float | None, tags: dict[str, str],
              loop: LoopPoints | None = None) -> bytes:
    """A zip of one ``STEM_FORMAT`` file per sounding voice, each ``length`` samples long (the
    mix's length) and scaled by the mix's mastering ``gain``, so the stems add up to the mix;
    with the mix's ``loop`` points."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # audio does not deflate
        for v, voice in enumerate(T.VOICES):
            if not piece.grid[:, v].any():
                continue
            solo = piece.copy()
            solo.grid[:, [u for u in range(T.N_VOICES) if u != v]] = T.REST
            x, rate, _, _ = synthesise(solo, preset)
            x = _fit_length(shape_end(x, piece, rate), length)
            if gain is not None:
                x *= np.float32(gain)
            if not loops(piece):
                A.fade_out(x, rate)
            archive.writestr(f"{voice}.{STEM_FORMAT}", _encode(x, rate, STEM_FORMAT, {**tags, "title": voice}, loop))
    return buffer.getvalue()


class _Inline:
    """An executor stand-in that runs each task at once, on the calling thread."""

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # handed to .result(), like a real executor
            future.set_exception(e)
        return future


def _encode(x: np.ndarray, rate: int, fmt: str, tags: dict[str, str], loop: LoopPoints | None) -> bytes:
    """``audio.encode``, with the loop points in the formats that carry them."""
    if loop is None or fmt not in LOOP_FORMATS:
        return A.encode(x, rate, fmt, tags)
    if fmt == "wav":
        return with_smpl_chunk(A.encode(x, rate, fmt, tags), loop, rate)
    return A.encode(x, rate, fmt, {**tags, **loop.vorbis_comments()})


def _timed(fn, *args):
    t = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - t


def _png(piece: Piece) -> bytes:
    from composer.render.pianoroll import piano_roll  # noqa: PLC0415 - pulls in matplotlib

    return piano_roll(piece)
