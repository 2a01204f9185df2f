"""Intensity layers: calm, explore and battle of one piece, as long as it to the sample, the same
chord root on (nearly) every beat by music21, and ordered in note density and loudness."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from music21 import chord as m21chord

from composer.generate.layers import LAYERS, compose_layers, layer_zips, sounding
from composer.render import audio as A
from composer.generate.request import GenerationRequest

PIECES = [("zelda-bach", 7, "4/4", False), ("doom", 3, "3/4", True), ("bach", 5, "4/4", False),
          ("blupi", 2, "6/8", False)]


def chord_roots(piece) -> list[int | None]:
    """music21's chord root of what the pitched voices sound on each beat (None: silence)."""
    beat = 16 // piece.time_signature[1]
    roots, cache = [], {}
    for pitches in sounding(piece.grid)[::beat]:
        notes = tuple(sorted({int(p) for p in pitches if p >= 0}))
        if notes not in cache:
            cache[notes] = m21chord.Chord(list(notes)).root().pitchClass if notes else None
        roots.append(cache[notes])
    return roots


@pytest.fixture(scope="module", params=PIECES, ids=lambda p: f"{p[0]}-{p[2].replace('/', '')}")
def layered(request, shipped_generator):
    style, seed, metre, loop = request.param
    piece = shipped_generator.generate(GenerationRequest(style=style, bars=16, seed=seed, time_signature=metre,
                                                          loop=loop))
    layers = compose_layers(shipped_generator, piece)
    return piece, layers, layer_zips(layers, "chip", "piece")


def test_three_layers_in_order_explore_is_the_piece(layered):
    piece, layers, zips = layered
    assert list(layers) == list(LAYERS) == ["calm", "explore", "battle"]
    assert np.array_equal(layers["explore"].grid, piece.grid)
    for layer in layers.values():
        assert (layer.n_frames, layer.tempo, layer.time_signature, layer.key, layer.sections) == (
            piece.n_frames, piece.tempo, piece.time_signature, piece.key, piece.sections)


def test_the_bass_and_harmony_stay_and_the_chords_agree_on_the_beats(layered):
    piece, layers, _ = layered
    for name, layer in layers.items():
        assert np.array_equal(layer.grid[:, 2:4], piece.grid[:, 2:4]), name  # harmony and bass
    explore = chord_roots(piece)
    for name, layer in layers.items():
        agree = [a == b for a, b in zip(chord_roots(layer), explore) if b is not None]
        assert np.mean(agree) >= 0.85, (name, np.mean(agree))


def test_density_and_loudness_rise_from_calm_to_battle(layered):
    piece, layers, zips = layered
    density = [layers[name].note_count() / piece.n_bars for name in LAYERS]
    assert density[0] < density[1] < density[2], density
    loudness, lengths = [], set()
    for name in LAYERS:
        with zipfile.ZipFile(io.BytesIO(zips[name])) as archive:
            assert sorted(archive.namelist()) == sorted(f"piece-{name}.{e}" for e in ("ogg", "mid", "beats.json"))
            x, rate = A.decode(archive.read(f"piece-{name}.ogg"), "ogg")
        loudness.append(A.gated_loudness_db(x, rate))
        lengths.add(len(x))
    assert loudness[0] < loudness[1] < loudness[2], loudness
    assert len(lengths) == 1  # identical length, to the sample


def test_layers_of_a_loop_loop_and_replay(layered, shipped_generator):
    from mutagen.oggvorbis import OggVorbis

    piece, layers, zips = layered
    for name in LAYERS:
        with zipfile.ZipFile(io.BytesIO(zips[name])) as archive:
            tags = OggVorbis(io.BytesIO(archive.read(f"piece-{name}.ogg"))).tags
        assert ("LOOPSTART" in tags) == bool(piece.extra.get("loop"))
    again = compose_layers(shipped_generator, piece)
    assert all(np.array_equal(again[n].grid, layers[n].grid) for n in LAYERS)
