"""MP4 of a piece: its piano roll scrolling under a playhead, in time with its audio.

The picture is drawn once, as one wide image (time on x at ``PIXELS_PER_SECOND``, pitch on
y, a ruler of section letters and bar numbers on top); ffmpeg then crops a moving window
out of it and overlays the playhead, both driven by each frame's time ``t``, and encodes
H.264 + AAC in the same call. No frame is drawn in Python: encoding is the only cost per
frame.

The window keeps the playhead in its middle and scrolls; at the start and the end, where
the image has no more to show, the window stops and the playhead moves instead. The
scroll is a whole number of pixels per frame (``PIXELS_PER_FRAME``): every frame is the
last one shifted, which x264 encodes almost for free.

``VideoLayout`` is where everything is (pixels of a time, rows of a pitch, the window
and the playhead at a time); the drawing, the ffmpeg expressions and the tests use it.
"""

from __future__ import annotations

import functools
import math
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.music import tokens as T
from composer.errors import RenderError
from composer.music.grid import Piece, form_sections
from composer.render import audio as A
from composer.render.pianoroll import DRAW_ORDER, VOICE_COLOURS, note_arrays, pitch_span, section_palette

WIDTH, HEIGHT = 854, 480  # 480p: legible bar numbers in Discord's inline player, fast to encode
FPS = 20  # enough for a steady scroll; fewer frames encode faster
PIXELS_PER_FRAME = 8  # even, so every crop and the playhead stay on the 4:2:0 chroma grid
PIXELS_PER_SECOND = FPS * PIXELS_PER_FRAME
PLAYHEAD_AT = WIDTH // 2 // 2 * 2  # the playhead's column while the window scrolls (even)
LEFT_MARGIN = 24  # pixels before time 0, so the playhead is whole at the start
PLAYHEAD_WIDTH = 4
PLAYHEAD_COLOUR = "#FF0040"  # no voice, section or line has it: tests find the playhead by it
RULER_HEIGHT = 40  # the strip on top: section letter and bar number per bar
ROLL_PAD = 6  # pixels between the ruler and the highest note, and under the lowest row
MAX_ROW_HEIGHT = 12  # pixels per semitone, at most (a narrow range is not drawn huge)
MIN_ROW_HEIGHT = 2
BAR_LINE_WIDTH = 2  # survives 4:2:0 and compression, so bar lines can be found in frames
BAR_LINE_COLOUR = "#A0A0A0"
BEAT_LINE_COLOUR = "#ECECEC"
OCTAVE_LINE_COLOUR = "#E0E0E0"
RULER_COLOUR = "#F2F2F2"  # ruler without sections
SECTION_LINE_COLOUR = "#8C8C8C"  # where a section starts, as in the piano roll
SECTION_LINE_WIDTH = 3
RULER_TEXT_COLOUR = "#404040"
DRUM_LANE_COLOUR = "#F7F7F7"
MAX_SECONDS = 6 * 60  # longer pieces get no video (the image would be over 58,000 pixels wide)

# x264: a fast preset (the scroll is pure translation, which even "superfast" finds) at a
# quality that keeps note edges and text clean: 32 bars make ~3 MB in ~2.5 s on 2 cores.
X264_OPTIONS = ("-preset", "superfast", "-tune", "stillimage", "-crf", "27")
# AAC at 128 kb/s; the "fast" coder encodes in half the time of the default (twoloop).
AAC_OPTIONS = ("-b:a", "128k", "-aac_coder", "fast")
FFMPEG_TIMEOUT_S = 300


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """(r, g, b) of "#RRGGBB"."""
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


@dataclass(frozen=True)
class VideoLayout:
    """Pixel geometry of a piece's video: the wide image, the window and the playhead."""

    seconds: float  # the video's (and the audio's) length
    frame_seconds: float  # one grid frame (a 16th note)
    frames_per_bar: int
    n_bars: int
    low: int  # lowest and highest pitch with a row
    high: int
    row_height: int
    roll_top: int  # y of the highest pitch row's top edge
    drum_top: int | None  # y of the first drum row, None without drums
    image_width: int

    @property
    def bar_seconds(self) -> float:
        return self.frames_per_bar * self.frame_seconds

    @property
    def n_video_frames(self) -> int:
        return max(1, round(self.seconds * FPS))

    def x_of(self, seconds: float) -> int:
        """Column of the wide image at which ``seconds`` into the piece starts."""
        return LEFT_MARGIN + math.floor(seconds * PIXELS_PER_SECOND + 0.5)

    def row_of(self, pitch: int) -> tuple[int, int]:
        """(top, bottom) rows of ``pitch``, bottom exclusive (same in the image and in frames)."""
        top = self.roll_top + (self.high - pitch) * self.row_height
        return top, top + self.row_height

    def drum_row(self, name: str) -> tuple[int, int]:
        top = (self.drum_top or 0) + T.DRUM_CLASSES.index(name) * self.row_height
        return top, top + self.row_height

    def window_x(self, t: float) -> int:
        """Left column of the window shown at time ``t``."""
        return min(max(self.x_of(t) - PLAYHEAD_AT, 0), self.image_width - WIDTH)

    def playhead_x(self, t: float) -> int:
        """Column of the video frame where time ``t`` is (the playhead covers the
        ``PLAYHEAD_WIDTH`` columns from ``playhead_x - PLAYHEAD_WIDTH // 2``)."""
        return self.x_of(t) - self.window_x(t)

    # -- the same, as ffmpeg expressions of the frame time t -----------------------------
    def _x_expression(self) -> str:
        return f"({LEFT_MARGIN}+floor(t*{PIXELS_PER_SECOND}+0.5))"

    def window_expression(self) -> str:
        return f"clip({self._x_expression()}-{PLAYHEAD_AT},0,{self.image_width - WIDTH})"

    def playhead_expression(self) -> str:
        return f"{self._x_expression()}-{self.window_expression()}-{PLAYHEAD_WIDTH // 2}"


def video_layout(piece: Piece, seconds: float) -> VideoLayout:
    """The layout of ``piece`` (whole bars) in a video ``seconds`` long."""
    low, high = pitch_span(piece)
    drums = bool(piece.grid[:, T.DRUM_VOICE].any())
    rows = high - low + 1 + (len(T.DRUM_CLASSES) + 1 if drums else 0)  # +1: a gap above the drums
    space = HEIGHT - RULER_HEIGHT - 2 * ROLL_PAD
    row_height = min(MAX_ROW_HEIGHT, max(MIN_ROW_HEIGHT, space // rows))
    roll_top = RULER_HEIGHT + ROLL_PAD + max(0, (space - rows * row_height) // 2)
    drum_top = roll_top + (high - low + 2) * row_height if drums else None
    width = LEFT_MARGIN + math.ceil(seconds * PIXELS_PER_SECOND) + PLAYHEAD_WIDTH + LEFT_MARGIN
    width = max(WIDTH, width + width % 2)  # even, so the last window stays on the chroma grid
    frame_seconds = 60.0 / (piece.tempo * T.FRAMES_PER_QUARTER)
    return VideoLayout(seconds=seconds, frame_seconds=frame_seconds, frames_per_bar=piece.frames_per_bar,
                       n_bars=piece.n_bars, low=low, high=high, row_height=row_height, roll_top=roll_top,
                       drum_top=drum_top, image_width=width)


# -- the wide image ------------------------------------------------------------------------
def wide_image(piece: Piece, layout: VideoLayout) -> np.ndarray:
    """(HEIGHT, image_width, 3) uint8: the whole piano roll, ruler on top."""
    image = np.full((HEIGHT, layout.image_width, 3), 255, np.uint8)
    x = layout.x_of
    fs = layout.frame_seconds
    fpb = layout.frames_per_bar
    music_end = x(piece.n_frames * fs)
    roll = slice(RULER_HEIGHT, HEIGHT)

    # backgrounds: sections (ruler and roll), the drum lane
    image[:RULER_HEIGHT] = hex_rgb(RULER_COLOUR)
    sections = list(piece.sections or [])[: layout.n_bars]
    palette = section_palette(sections)
    starts = []  # where a section follows another: AABA's two opening A's are two sections
    for k, (start, stop, label) in enumerate(form_sections(sections)):
        image[:, x(start * fpb * fs) : x(stop * fpb * fs)] = hex_rgb(palette[label])
        if k:
            starts.append(x(start * fpb * fs))
    if layout.drum_top is not None:
        image[layout.drum_top : layout.drum_top + len(T.DRUM_CLASSES) * layout.row_height, :music_end] = hex_rgb(
            DRUM_LANE_COLOUR
        )
    image[RULER_HEIGHT - 1] = hex_rgb(BAR_LINE_COLOUR)

    # octave lines (at each C), beat lines, bar lines
    for pitch in range(layout.low, layout.high + 1):
        if pitch % 12 == 0:
            top, bottom = layout.row_of(pitch)
            image[(top + bottom) // 2, :music_end] = hex_rgb(OCTAVE_LINE_COLOUR)
    beat = fpb // piece.time_signature[0]
    for frame in range(0, piece.n_frames, beat):
        if frame % fpb:
            image[roll, x(frame * fs)] = hex_rgb(BEAT_LINE_COLOUR)
    for bar in range(layout.n_bars + 1):
        column = x(bar * fpb * fs)
        image[:, column : column + BAR_LINE_WIDTH] = hex_rgb(BAR_LINE_COLOUR)
    for column in starts:
        image[:, column + BAR_LINE_WIDTH : column + BAR_LINE_WIDTH + SECTION_LINE_WIDTH] = hex_rgb(SECTION_LINE_COLOUR)

    # notes, the melody on top; a one-pixel gap at each note's end shows repeated notes
    inset = 1 if layout.row_height >= 4 else 0
    for name in DRAW_ORDER:
        onsets, ends, pitches = note_arrays(piece, T.VOICE_INDEX[name])
        colour = hex_rgb(VOICE_COLOURS[name])
        for onset, end, pitch in zip(onsets.tolist(), ends.tolist(), pitches.tolist()):
            top, bottom = layout.row_of(pitch)
            image[top + inset : bottom, x(onset * fs) : max(x(onset * fs) + 1, x(end * fs) - 1)] = colour

    # drums: a short block per hit in its class's row
    drums = piece.grid[:, T.DRUM_VOICE]
    hit_width = max(3, round(fs * PIXELS_PER_SECOND * 0.6))
    for frame in np.flatnonzero(drums).tolist():
        top, bottom = layout.drum_row(T.drum_name(int(drums[frame])))
        image[top + inset : bottom, x(frame * fs) : x(frame * fs) + hit_width] = hex_rgb(VOICE_COLOURS["drums"])

    _draw_ruler_text(image, layout, sections)
    return image


@functools.lru_cache(maxsize=4)
def _font(bold: bool, size: int):
    """matplotlib's bundled DejaVu Sans (always there) through Pillow (matplotlib's own dependency)."""
    from PIL import ImageFont  # noqa: PLC0415

    try:
        import matplotlib  # noqa: PLC0415

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def _draw_ruler_text(image: np.ndarray, layout: VideoLayout, sections: list[str]) -> None:
    """Section letter (bold) and bar number at the start of every bar, in the ruler strip."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    strip = Image.fromarray(image[: RULER_HEIGHT - 1])
    draw = ImageDraw.Draw(strip)
    letter_font, number_font = _font(True, 20), _font(False, 14)
    colour = hex_rgb(RULER_TEXT_COLOUR)
    middle = (RULER_HEIGHT - 1) / 2
    for bar in range(layout.n_bars):
        left = layout.x_of(bar * layout.bar_seconds) + BAR_LINE_WIDTH + 6
        if bar < len(sections):
            draw.text((left, middle), sections[bar], font=letter_font, fill=colour, anchor="lm")
            left += int(draw.textlength(sections[bar], font=letter_font)) + 6
        draw.text((left, middle), str(bar + 1), font=number_font, fill=colour, anchor="lm")
    image[: RULER_HEIGHT - 1] = np.asarray(strip)


# -- encoding ------------------------------------------------------------------------------
def filter_graph(layout: VideoLayout) -> str:
    """ffmpeg filters: the image once (as 4:2:0), repeated at ``FPS``, cropped at the
    window's place at each ``t``, with the playhead laid over it at its place."""
    colour = PLAYHEAD_COLOUR.lstrip("#")
    return (
        f"[0:v]format=yuv420p,loop=loop=-1:size=1:start=0,settb=1/{FPS},setpts=N,"  # frame n is at t = n / FPS
        f"crop={WIDTH}:{HEIGHT}:x='{layout.window_expression()}':y=0[roll];"
        f"color=c=0x{colour}:s={PLAYHEAD_WIDTH}x{HEIGHT}:r={FPS}[playhead];"
        f"[roll][playhead]overlay=x='{layout.playhead_expression()}':y=0:eval=frame:format=yuv420[v]"
    )


def encode_mp4(piece: Piece, pcm: np.ndarray, rate: int, tags: dict[str, str] | None = None) -> bytes:
    """The MP4 (H.264 + AAC, yuv420p, moov first) of ``piece`` with the mastered 16-bit
    ``pcm`` ((samples, channels)) as its sound; as long as the audio."""
    if pcm.dtype != np.int16:
        pcm = A.to_int16(pcm)
    seconds = len(pcm) / rate
    if seconds > MAX_SECONDS:
        raise RenderError(f"Videos are made of pieces up to {MAX_SECONDS // 60} minutes long; "
                          f"this one lasts {seconds / 60:.1f}.")
    ffmpeg = A.require_ffmpeg("Video", prefer_bundled=True)
    layout = video_layout(piece, seconds)
    image = wide_image(piece, layout)
    metadata = [arg for key in ("title", "artist", "album", "genre", "comment") if (tags or {}).get(key)
                for arg in ("-metadata", f"{key}={tags[key]}")]
    with tempfile.TemporaryDirectory(prefix="mozart-video-") as folder:
        picture, out = Path(folder) / "roll.rgb", Path(folder) / "piece.mp4"
        image.tofile(picture)
        del image
        command = [
            ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{layout.image_width}x{HEIGHT}", "-i", str(picture),
            "-f", "s16le", "-ar", str(rate), "-ac", str(pcm.shape[1]), "-i", "pipe:0",
            "-filter_complex", filter_graph(layout), "-map", "[v]", "-map", "1:a",
            "-frames:v", str(layout.n_video_frames), "-r", str(FPS),
            "-c:v", "libx264", *X264_OPTIONS, "-pix_fmt", "yuv420p",
            "-c:a", "aac", *AAC_OPTIONS, *metadata, "-movflags", "+faststart", str(out),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, input=pcm.tobytes(), capture_output=True, check=False,
                                  timeout=FFMPEG_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise RenderError("Making the video took too long; try a shorter piece.") from e
        except OSError as e:
            raise RenderError(f"ffmpeg could not be started for the video: {e}") from e
        if done.returncode != 0 or not out.exists():
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise RenderError(f"ffmpeg could not make the video: {lines[-1] if lines else f'exit {done.returncode}'}")
        return out.read_bytes()
