"""The MP4: checked like the audio, from what a player decodes.

Durations come from the MP4's own boxes and from decoding; the picture is read back from
decoded frames at a few times: the playhead (found by its colour) must stand where the
layout puts time t, the bar lines around it (found in the ruler) must put it at the
fraction of the bar that is playing, and the notes beside it must be the pitches sounding
at t. Each check is also run against a shifted time, where it must fail.
"""

from __future__ import annotations

import struct
import subprocess

import numpy as np
import pytest

from composer.music import tokens as T
from composer.errors import RenderError
from composer.music.grid import Piece
from composer.render import DEFAULT_FORMATS, render
from composer.render import audio as A
from composer.render import video as V
from composer.render.demo import demo_piece
from composer.render.pianoroll import DRAW_ORDER, VOICE_COLOURS, note_arrays

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("PIL")

TEMPO = 120.0  # a bar is 2 s = 320 px: two bar lines fit in the window around the playhead
SECTIONS = ["A", "A", "B", "B", "A", "A"]
SIZE_LIMIT = 8_000_000  # bytes, for 32 bars
BARS_32_AT_TEMPO_S = 32 * 4 * 60 / TEMPO
COLOUR_TOLERANCE = 60.0  # Euclidean RGB distance that x264 at its quality level stays within
FRACTION_TOLERANCE = 0.02  # of a bar (6 px here)
PLAYHEAD_TOLERANCE_PX = 1.5
SAMPLE_OFFSET_PX = V.PLAYHEAD_WIDTH // 2 + 4  # where the notes "under" the playhead are read: just after it
TIMES = (1.3, 5.1, 8.6, 11.3)  # seconds: playhead moving (start), scrolling (middle, twice), moving (end)
SHIFT_S = 0.25  # an eighth note: a wrong playhead this far off must fail every check


def _rgb(colour: str) -> np.ndarray:
    return np.array(V.hex_rgb(colour), np.float32)


@pytest.fixture(scope="module")
def piece() -> Piece:
    return demo_piece(len(SECTIONS), TEMPO).copy(sections=list(SECTIONS))


@pytest.fixture(scope="module")
def rendered(piece):
    return render(piece, "chip", ("mp3", "mp4"))


@pytest.fixture(scope="module")
def video_file(rendered, tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "piece.mp4"
    path.write_bytes(rendered["mp4"])
    return path


@pytest.fixture(scope="module")
def layout(piece, rendered) -> V.VideoLayout:
    return V.video_layout(piece.pad_to_bars(), rendered.seconds)


def _frame_index(t: float) -> int:
    return round(t * V.FPS)


@pytest.fixture(scope="module")
def decoded(video_file):
    """(metadata, number of frames, {frame index: (H, W, 3) uint8}) for the frames at ``TIMES``."""
    wanted = {_frame_index(t) for t in TIMES}
    frames = imageio_ffmpeg.read_frames(str(video_file))
    meta = next(frames)
    kept, count = {}, 0
    for count, data in enumerate(frames, start=1):
        if count - 1 in wanted:
            kept[count - 1] = np.frombuffer(data, np.uint8).reshape(meta["size"][1], meta["size"][0], 3)
    return meta, count, kept


# -- the MP4's boxes -----------------------------------------------------------------------
def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, payload start, payload end) of the ISO-BMFF boxes in data[start:end]."""
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[start + 8 : start + 16])[0], 16
        elif size == 0:
            size = end - start
        yield kind.decode("latin-1"), start + header, start + size
        start += size


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int]:
    return next((s, e) for k, s, e in _boxes(data, start, end) if k == kind)


def track_seconds(data: bytes) -> dict[str, float]:
    """Handler type ("vide", "soun") -> the track's media duration in seconds (mdhd)."""
    moov = _child(data, 0, len(data), "moov")
    tracks = {}
    for kind, start, end in _boxes(data, *moov):
        if kind != "trak":
            continue
        mdia = _child(data, start, end, "mdia")
        hdlr_start, _ = _child(data, *mdia, "hdlr")
        handler = data[hdlr_start + 8 : hdlr_start + 12].decode("latin-1")
        mdhd_start, _ = _child(data, *mdia, "mdhd")
        if data[mdhd_start] == 1:  # version 1: 64-bit times
            timescale, duration = struct.unpack(">IQ", data[mdhd_start + 20 : mdhd_start + 32])
        else:
            timescale, duration = struct.unpack(">II", data[mdhd_start + 12 : mdhd_start + 20])
        tracks[handler] = duration / timescale
    return tracks


def decoded_audio_seconds(path, rate: int) -> float:
    """Length of the MP4's sound as a player decodes it (encoder priming removed)."""
    out = subprocess.run([A.find_ffmpeg(prefer_bundled=True), "-v", "error", "-i", str(path), "-map", "0:a",
                          "-f", "s16le", "-ac", "2", "-ar", str(rate), "pipe:1"], capture_output=True, check=True)
    return len(out.stdout) / 4 / rate


# -- reading a frame -----------------------------------------------------------------------
def _near(frame: np.ndarray, colour: str) -> np.ndarray:
    return np.linalg.norm(frame.astype(np.float32) - _rgb(colour), axis=-1) < COLOUR_TOLERANCE


def playhead_centre(frame: np.ndarray) -> float:
    """Mean column of the columns that are playhead-coloured nearly top to bottom."""
    columns = np.flatnonzero(_near(frame, V.PLAYHEAD_COLOUR).mean(axis=0) > 0.9)
    assert len(columns), "no playhead in the frame"
    assert np.ptp(columns) < 2 * V.PLAYHEAD_WIDTH, f"playhead-coloured columns far apart: {columns}"
    return float(columns.mean())


def bar_line_centres(frame: np.ndarray) -> list[float]:
    """Columns of the bar lines, read in the ruler (where no note covers them)."""
    ruler = frame[3 : V.RULER_HEIGHT - 4]
    columns = np.flatnonzero(_near(ruler, V.BAR_LINE_COLOUR).mean(axis=0) > 0.9)
    lines: list[list[int]] = []
    for c in columns.tolist():
        if lines and c - lines[-1][-1] <= 1:
            lines[-1].append(c)
        else:
            lines.append([c])
    return [float(np.mean(line)) for line in lines]


def bar_fraction(frame: np.ndarray) -> float:
    """How far through its bar the playhead stands, from the bar lines on either side."""
    x = playhead_centre(frame)
    lines = bar_line_centres(frame)
    before = [c for c in lines if c < x - V.PLAYHEAD_WIDTH]
    after = [c for c in lines if c > x + V.PLAYHEAD_WIDTH]
    assert before and after, f"no bar line on both sides of the playhead at {x}: {lines}"
    return (x - before[-1]) / (after[0] - before[-1])


def pitches_drawn(frame: np.ndarray, layout: V.VideoLayout, column: int) -> dict[int, str]:
    """Pitch -> voice whose colour fills that pitch's row in ``column``."""
    drawn = {}
    for pitch in range(layout.low, layout.high + 1):
        top, bottom = layout.row_of(pitch)
        pixel = frame[(top + 1 + bottom) // 2, column].astype(np.float32)
        for voice in DRAW_ORDER:
            if np.linalg.norm(pixel - _rgb(VOICE_COLOURS[voice])) < COLOUR_TOLERANCE:
                drawn[pitch] = voice
    return drawn


def pitches_sounding(piece: Piece, seconds: float) -> dict[int, str]:
    """Pitch -> the voice drawn on top among those sounding it at ``seconds``."""
    frame = int(seconds * piece.tempo * T.FRAMES_PER_QUARTER / 60)
    sounding = {}
    for voice in DRAW_ORDER:  # later voices are drawn over earlier ones
        onsets, ends, pitches = note_arrays(piece, T.VOICE_INDEX[voice])
        for pitch in pitches[(onsets <= frame) & (frame < ends)].tolist():
            sounding[pitch] = voice
    return sounding


# -- durations, size, format ---------------------------------------------------------------
def test_video_lasts_as_long_as_its_audio_and_the_mp3(rendered, video_file, decoded):
    data = rendered["mp4"]
    assert data[4:8] == b"ftyp"
    tracks = track_seconds(data)
    assert set(tracks) == {"vide", "soun"}
    assert tracks["vide"] == pytest.approx(rendered.seconds, abs=0.1)
    assert tracks["soun"] == pytest.approx(rendered.seconds, abs=0.1)
    meta, n_frames, _ = decoded
    assert meta["fps"] == V.FPS and n_frames / V.FPS == pytest.approx(rendered.seconds, abs=0.1)
    mp3, rate = A.decode(rendered["mp3"], "mp3")
    assert len(mp3) / rate == pytest.approx(rendered.seconds, abs=0.1)
    assert decoded_audio_seconds(video_file, rate) == pytest.approx(len(mp3) / rate, abs=0.1)


def test_video_is_h264_yuv420p_and_aac_with_its_index_first(rendered, video_file):
    data = rendered["mp4"]
    kinds = [kind for kind, _, _ in _boxes(data)]
    assert kinds.index("moov") < kinds.index("mdat")  # +faststart: plays while downloading
    info = subprocess.run([A.find_ffmpeg(prefer_bundled=True), "-hide_banner", "-i", str(video_file)],
                          capture_output=True, text=True, check=False).stderr
    assert "Video: h264" in info and "yuv420p" in info and f"{V.WIDTH}x{V.HEIGHT}" in info
    assert "Audio: aac" in info and "start: 0.000000" in info  # sound and picture start together


def test_video_is_small_enough_for_32_bars(rendered):
    size = len(rendered["mp4"])
    assert size < SIZE_LIMIT
    assert size / rendered.seconds * BARS_32_AT_TEMPO_S < SIZE_LIMIT  # at this rate, 32 bars fit too


# -- the picture, read back ----------------------------------------------------------------
@pytest.mark.parametrize("t", TIMES)
def test_playhead_stands_where_the_music_is(t, decoded, layout, piece):
    frame = decoded[2][_frame_index(t)]
    t = _frame_index(t) / V.FPS
    expected = layout.playhead_x(t) - 0.5  # the line covers playhead_x - 2 .. playhead_x + 1
    assert playhead_centre(frame) == pytest.approx(expected, abs=PLAYHEAD_TOLERANCE_PX)
    bar_seconds = layout.bar_seconds
    assert bar_fraction(frame) == pytest.approx((t % bar_seconds) / bar_seconds, abs=FRACTION_TOLERANCE)
    column = layout.playhead_x(t) + SAMPLE_OFFSET_PX
    drawn = pitches_drawn(frame, layout, column)
    assert drawn and drawn == pitches_sounding(piece, t + SAMPLE_OFFSET_PX / V.PIXELS_PER_SECOND)


def test_window_scrolls_in_the_middle_and_stops_at_the_ends(layout):
    assert layout.playhead_x(1.3) < V.PLAYHEAD_AT  # the start: the window waits, the playhead moves
    assert layout.playhead_x(5.1) == layout.playhead_x(8.6) == V.PLAYHEAD_AT
    assert layout.playhead_x(11.3) > V.PLAYHEAD_AT  # the end
    assert layout.window_x(layout.seconds) == layout.image_width - V.WIDTH


def test_the_checks_fail_for_a_playhead_an_eighth_off(decoded, layout, piece):
    """What the tests above read, compared with a time ``SHIFT_S`` later, must not match."""
    for t in TIMES:
        frame = decoded[2][_frame_index(t)]
        t = _frame_index(t) / V.FPS
        shifted = t + SHIFT_S
        assert abs(playhead_centre(frame) - (layout.x_of(shifted) - layout.window_x(t) - 0.5)) > 10
        bar_seconds = layout.bar_seconds
        assert abs(bar_fraction(frame) - (shifted % bar_seconds) / bar_seconds) > 3 * FRACTION_TOLERANCE
    mismatches = 0
    for t in TIMES:
        t = _frame_index(t) / V.FPS
        drawn = pitches_drawn(decoded[2][_frame_index(t)], layout, layout.playhead_x(t) + SAMPLE_OFFSET_PX)
        mismatches += drawn != pitches_sounding(piece, t + SHIFT_S + SAMPLE_OFFSET_PX / V.PIXELS_PER_SECOND)
    assert mismatches == len(TIMES)


def test_ruler_shows_every_bar_number_and_section_colours(piece, layout):
    image = V.wide_image(piece.pad_to_bars(), layout)
    ruler = image[: V.RULER_HEIGHT - 1]
    dark = np.all(ruler < 120, axis=-1)  # text
    for bar in range(piece.n_bars):
        left = layout.x_of(bar * layout.bar_seconds)
        assert dark[:, left : left + 60].sum() > 40, f"no label in bar {bar + 1}"
    a, b = (ruler[5, layout.x_of(bar * layout.bar_seconds) + 100] for bar in (0, 2))
    assert tuple(a) != tuple(b)  # sections A and B have their own colours


def test_aaba_opening_shows_two_sections_not_one_block():
    """The two opening A's share a colour; a line where the second starts tells them apart."""
    aaba = demo_piece(8, TEMPO).copy(sections=list("AAAABBAA")).pad_to_bars()  # AABA of two-bar sections
    layout = V.video_layout(aaba, aaba.n_bars * 4 * 60 / TEMPO)
    image = V.wide_image(aaba, layout)
    line = _rgb(V.SECTION_LINE_COLOUR)

    def section_line_after(bar: int) -> bool:
        column = layout.x_of(bar * layout.bar_seconds) + V.BAR_LINE_WIDTH + 1
        return bool(np.all(np.abs(image[V.RULER_HEIGHT + 5, column].astype(np.float32) - line) < 1))

    assert [section_line_after(bar) for bar in range(1, 8)] == [False, True, False, True, False, True, False]


# -- render() ------------------------------------------------------------------------------
def test_mp4_is_asked_for_not_made_by_default(piece, tmp_path):
    assert "mp4" not in DEFAULT_FORMATS
    out = render(piece.bars(0, 1), "chip", ("mp4",), out_dir=tmp_path, basename="one")
    assert (tmp_path / "one.mp4").read_bytes() == out["mp4"]


def test_too_long_a_piece_comes_without_a_video_and_says_why():
    rendered = render(Piece.empty(128, tempo=40.0), "chip", ("mid", "mp4"))
    assert set(rendered.data) == {"mid", "beats"}
    assert any("without" in warning for warning in rendered.warnings)


def test_ffmpeg_failure_is_a_render_error(piece, monkeypatch):
    monkeypatch.setattr(V, "X264_OPTIONS", ("-preset", "no-such-preset"))
    with pytest.raises(RenderError, match="could not make the video"):
        render(piece.bars(0, 1), "chip", ("mp4",))


def test_missing_ffmpeg_is_a_clear_error(piece, monkeypatch):
    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: (_ for _ in ()).throw(RuntimeError("none")))
    with pytest.raises(RenderError, match="Video needs ffmpeg"):
        render(piece, "chip", ("mp4",))
