"""Stems: one audio file per sounding voice, each as long as the mix, adding up to it."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from composer.music import tokens as T
from composer.music.grid import Piece
from composer.render import audio as A
from composer.render import render


@pytest.fixture(scope="module")
def piece() -> Piece:
    piece = Piece.empty(4, tempo=140.0, title="stems")
    for f in range(0, piece.n_frames, 4):
        piece.grid[f, T.VOICE_INDEX["lead"]] = T.onset(72 + (f // 4) % 5)
        piece.grid[f + 1 : f + 3, T.VOICE_INDEX["lead"]] = T.HOLD
    piece.grid[::8, T.VOICE_INDEX["bass"]] = T.onset(40)
    piece.grid[::4, T.DRUM_VOICE] = T.drum_token("kick")
    return piece  # counter and harmony stay silent


@pytest.mark.parametrize("sound", ["chip", "orchestra"])
def test_stems_hold_one_file_per_sounding_voice_as_long_as_the_mix(piece, sound):
    rendered = render(piece, sound=sound, formats=("wav", "stems"))
    mix, rate = A.decode(rendered["wav"], "wav")
    archive = zipfile.ZipFile(io.BytesIO(rendered["stems"]))
    assert sorted(archive.namelist()) == ["bass.ogg", "drums.ogg", "lead.ogg"]
    total = np.zeros_like(mix)
    for name in archive.namelist():
        stem, stem_rate = A.decode(archive.read(name), "ogg")
        assert stem_rate == rate
        assert abs(len(stem) - len(mix)) <= rate // 100  # the codec may pad a few ms
        assert np.sqrt(np.mean(stem**2)) > 0.005, f"{name} is silent"
        n = min(len(stem), len(mix))
        total[:n] += stem[:n]
    # The stems share the mix's gain: together they sound like the mix (the limiter and the
    # codec leave a small difference).
    residual = np.sqrt(np.mean((total - mix) ** 2)) / np.sqrt(np.mean(mix**2))
    assert residual < 0.15
    assert rendered.filename("stems").endswith(".stems.zip")
