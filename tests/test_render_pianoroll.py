"""The piano-roll PNG: size, one colour per voice, sections, title."""

from __future__ import annotations

import io

import numpy as np
import pytest

from composer import tokens as T
from composer.grid import Piece
from composer.render.demo import demo_piece

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from composer.render.pianoroll import (  # noqa: E402 - after the skips
    HEIGHT_PX,
    SECTION_COLOURS,
    VOICE_COLOURS,
    WIDTH_PX,
    describe,
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
