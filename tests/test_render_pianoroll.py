"""The piano-roll PNG: size, one colour per voice, sections, title."""

from __future__ import annotations

import io

import numpy as np
import pytest

from composer.music import tokens as T
from composer.music.grid import Piece
from composer.render.demo import demo_piece

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from composer.render.pianoroll import (  # noqa: E402 - after the skips
    HEIGHT_PX,
    SECTION_COLOURS,
    VOICE_COLOURS,
    WIDTH_PX,
    describe,
    form_sections,
    piano_roll,
)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def count_colour(image: np.ndarray, hex_colour: str) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], np.uint8)
    return int(np.all(image == rgb, axis=-1).sum())


@pytest.fixture(scope="module")
def roll() -> np.ndarray:
    return pixels(piano_roll(demo_piece(16)))


def test_png_has_the_expected_size(roll):
    assert roll.shape == (HEIGHT_PX, WIDTH_PX, 3)


@pytest.mark.parametrize("voice", T.VOICES)
def test_each_voice_colour_is_in_the_image(roll, voice):
    assert count_colour(roll, VOICE_COLOURS[voice]) > 100


def test_a_silent_voice_leaves_no_colour():
    piece = demo_piece(4)
    piece.grid[:, T.VOICE_INDEX["counter"]] = T.REST
    image = pixels(piano_roll(piece))
    notes_area = image[60:, :]  # below the title row, where the legend swatches are
    assert count_colour(notes_area, VOICE_COLOURS["counter"]) == 0
    assert count_colour(notes_area, VOICE_COLOURS["lead"]) > 100


def test_sections_are_shaded_one_colour_per_label():
    piece = demo_piece(32)  # A A B A, eight bars each
    image = pixels(piano_roll(piece))
    a, b = count_colour(image, SECTION_COLOURS[0]), count_colour(image, SECTION_COLOURS[1])
    assert b > 1000 and 2.5 < a / b < 3.5  # three A sections to one B
    assert count_colour(pixels(piano_roll(piece.copy(sections=None))), SECTION_COLOURS[0]) == 0


def test_title_names_title_style_tempo_key_metre_and_seed():
    piece = demo_piece(2)
    piece.extra["seed"] = 1234
    line = describe(piece)
    for part in ("Demo Overture", "zelda × bach", "120 bpm", "D minor", "4/4", "seed 1234"):
        assert part in line
    assert describe(Piece.empty(1)) == "Untitled  ·  120 bpm  ·  4/4"


@pytest.mark.parametrize("bars, ts", [(1, (4, 4)), (200, (4, 4)), (5, (3, 4))], ids=str)
def test_any_length_and_metre_renders(bars, ts):
    piece = Piece.empty(bars, ts)
    piece.grid[0, 0] = T.onset(60)
    assert pixels(piano_roll(piece)).shape == (HEIGHT_PX, WIDTH_PX, 3)


def test_empty_piece_renders():
    assert piano_roll(Piece.empty(2)).startswith(b"\x89PNG")


def test_a_generated_title_names_the_seed_once_and_never_as_a_number_sign():
    """The bot's embed says "Piece #<id>": the picture must not say "#<seed>" beside it."""
    piece = demo_piece(2)
    piece.title, piece.game, piece.extra["seed"] = "zelda-bach #7", "dink", 7  # zelda is an alias of dink
    line = describe(piece)
    assert "#" not in line and line.count("7") == 1 and "seed 7" in line
    assert line.startswith("zelda-bach — dink × bach  ·  ")
    piece.title, piece.game = "bach #7", None  # a style is not named twice
    assert describe(piece).startswith("bach  ·  120 bpm")


def test_form_sections_split_a_run_of_repeats():
    assert form_sections(list("AAAAAAAABBBBAAAA")) == [(0, 4, "A"), (4, 8, "A"), (8, 12, "B"), (12, 16, "A")]
    assert form_sections(list("AABBAACCAA")) == [(0, 2, "A"), (2, 4, "B"), (4, 6, "A"), (6, 8, "C"), (8, 10, "A")]
    assert form_sections(list("AAAB")) == [(0, 3, "A"), (3, 4, "B")]  # nothing says where a lone run splits


def _ink_columns(image: np.ndarray, rows: slice) -> np.ndarray:
    """Columns holding dark (text) pixels in ``rows``."""
    return np.flatnonzero((image[rows].max(axis=-1) < 90).any(axis=0))


def test_aaba_is_drawn_as_four_labelled_sections(monkeypatch):
    from composer.render import pianoroll

    piece = demo_piece(32)  # A A B A, eight bars each
    labels = []
    real_matplotlib = pianoroll._matplotlib

    def spying_matplotlib():  # the axes' text calls: the section labels and where they sit
        Figure, *rest = real_matplotlib()

        class SpyFigure(Figure):
            def add_axes(self, *args, **kwargs):
                ax = super().add_axes(*args, **kwargs)
                original = ax.text

                def text(x, y, s, *a, **k):
                    labels.append((x, s))
                    return original(x, y, s, *a, **k)

                ax.text = text
                return ax

        return (SpyFigure, *rest)

    monkeypatch.setattr(pianoroll, "_matplotlib", spying_matplotlib)
    piano_roll(piece)
    assert labels == [(4.0, "A"), (12.0, "A"), (20.0, "B"), (28.0, "A")]


def test_a_ten_digit_seed_keeps_the_title_clear_of_the_legend():
    piece = demo_piece(8)
    piece.title, piece.extra["seed"] = "zelda-bach #1234567890", 1234567890
    image = pixels(piano_roll(piece))
    title_row = slice(10, 48)
    swatch = np.flatnonzero(np.all(image[title_row] == [int(VOICE_COLOURS["lead"][i:i + 2], 16) for i in (1, 3, 5)],
                                   axis=-1).any(axis=0))
    text_before_legend = _ink_columns(image, title_row)
    text_before_legend = text_before_legend[text_before_legend < swatch.min()]
    assert swatch.min() - text_before_legend.max() >= 12  # a clear gap between the title and the legend
    assert "seed 1234567890" in describe(piece)


def test_a_very_long_title_is_shortened_before_the_legend():
    piece = demo_piece(8)
    piece.title = "A remixed file whose name goes on and on and on " * 3
    image = pixels(piano_roll(piece))
    title_row = slice(10, 48)
    lead = [int(VOICE_COLOURS["lead"][i:i + 2], 16) for i in (1, 3, 5)]
    swatch = np.flatnonzero(np.all(image[title_row] == lead, axis=-1).any(axis=0))
    ink = _ink_columns(image, title_row)
    assert swatch.min() - ink[ink < swatch.min()].max() >= 12


@pytest.mark.parametrize("ts", [(3, 4), (6, 8)], ids=lambda ts: f"{ts[0]}-{ts[1]}")
def test_three_four_and_six_eight_draw_one_bar_per_bar(ts):
    """A 3/4 or 6/8 bar is as wide as a 4/4 one: notes sit in the bar they sound in."""
    piece = Piece.empty(4, ts)
    fpb = piece.frames_per_bar
    piece.grid[3 * fpb, T.VOICE_INDEX["lead"]] = T.onset(72)  # the last bar's first beat
    piece.grid[3 * fpb + 1 : 4 * fpb, T.VOICE_INDEX["lead"]] = T.HOLD
    image = pixels(piano_roll(piece))
    columns = np.flatnonzero(np.all(image == [int(VOICE_COLOURS["lead"][i:i + 2], 16) for i in (1, 3, 5)],
                                    axis=-1)[60:].any(axis=0))
    left, right = 0.045 * WIDTH_PX, 0.99 * WIDTH_PX  # the axes
    bar = (right - left) / 4
    assert abs(columns.min() - (left + 3 * bar)) < 4 and abs(columns.max() - right) < 6


def test_a_128_bar_piece_numbers_its_bars_every_four():
    piece = demo_piece(128)
    image = pixels(piano_roll(piece))
    assert image.shape == (HEIGHT_PX, WIDTH_PX, 3)
    assert count_colour(image, SECTION_COLOURS[1]) > 1000  # its B section is shaded
