"""Stingers: one or two bars in the piece's key, tempo, metre and style; victory ends with the bass
on the tonic, defeat unresolved."""

from __future__ import annotations

import pytest

from composer.music import tokens as T
from composer.music.grid import parse_key
from composer.generate.request import GenerationRequest
from composer.generate.sampling import SCALES
from composer.generate.stingers import STINGERS, compose_stinger, degree_class
from composer.generate.layers import sounding

PIECES = [("zelda-bach", 7, "4/4"), ("doom", 3, "3/4"), ("bach", 5, "6/8")]


@pytest.fixture(scope="module", params=PIECES, ids=lambda p: f"{p[0]}-{p[2].replace('/', '')}")
def piece(request, shipped_generator):
    style, seed, metre = request.param
    return shipped_generator.generate(GenerationRequest(style=style, bars=8, seed=seed, time_signature=metre))


@pytest.mark.parametrize("kind", list(STINGERS))
def test_a_stinger_is_in_the_pieces_key_tempo_and_metre(shipped_generator, piece, kind):
    stinger = compose_stinger(shipped_generator, piece, kind)
    tonic, mode = parse_key(piece.key)
    assert (stinger.tempo, stinger.time_signature, stinger.key) == (piece.tempo, piece.time_signature, piece.key)
    assert 1 <= stinger.n_bars <= 2 and stinger.extra["stinger"] == kind
    pitches = [n.pitch for n in stinger.notes() if n.voice != T.DRUM_VOICE]
    assert len(pitches) >= 3 and all((p - tonic) % 12 in SCALES[mode] for p in pitches)
    bass = stinger.notes(T.VOICE_INDEX["bass"])
    final = {int(p) % 12 for p in sounding(stinger.grid)[-1] if p >= 0}
    if kind == "victory":
        assert bass[-1].pitch % 12 == tonic and tonic in final  # ends on the tonic
    elif kind == "defeat":
        assert bass[-1].pitch % 12 != tonic and tonic not in final  # unresolved
    assert bass[-1].pitch % 12 == degree_class(tonic, mode, STINGERS[kind].bass)
    assert bass[-1].end == stinger.n_frames  # the final note rings to the end
    assert compose_stinger(shipped_generator, piece, kind) == stinger  # replays


def test_an_unknown_stinger_names_the_kinds(shipped_generator, piece):
    with pytest.raises(ValueError, match="victory, defeat, discovery"):
        compose_stinger(shipped_generator, piece, "fanfare")
