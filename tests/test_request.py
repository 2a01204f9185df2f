"""The composition request: one declaration, stored and rebuilt exactly, every range enforced."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from composer.music import tokens as T
from composer.cli.options import request_from_options, request_options
from composer.errors import GenerationParameterError
from composer.music.grid import Piece
from composer.generate.request import FORMS, MAX_BARS, GenerationRequest, remix_request


def _primer(bars: int = 4, time_signature=(4, 4)) -> Piece:
    piece = Piece.empty(bars, time_signature)
    piece.grid[::4, T.VOICE_INDEX["lead"]] = T.onset(72)
    piece.grid[::8, T.VOICE_INDEX["bass"]] = T.onset(40)
    return piece


REQUESTS = [
    GenerationRequest(),
    GenerationRequest(style="doom-mozart", bars=17, form="rondo", time_signature="3/4", tempo=132.5,
                      key="F# minor", blend=0.2, temperature=1.3, top_p=0.8, seed=99, steps=9, variation=0.1,
                      tonality=0.0, guidance=0.5, smoothness=0.0),
    remix_request(_primer(), "bach", keep=("melody", "drums"), strength=0.4, seed=5),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=["defaults", "everything-set", "remix"])
def test_from_params_is_the_exact_inverse_of_params(request_):
    stored = json.loads(json.dumps(request_.params()))  # what the database keeps
    rebuilt = GenerationRequest.from_params(stored, primer=request_.primer)
    assert rebuilt == request_
    assert rebuilt.params() == request_.params()
    assert rebuilt.replace(seed=(request_.seed or 0) + 1) != request_


def test_from_params_ignores_what_the_bot_stores_beside_the_request_and_reads_old_rows():
    params = {**GenerationRequest(bars=8).params(), "sound": "piano", "key_found": "C major", "sections": None,
              "time_signature": [3, 4]}
    rebuilt = GenerationRequest.from_params(params)
    assert rebuilt.bars == 8 and rebuilt.time_signature == "3/4" and rebuilt.meter == (3, 4)


@pytest.mark.parametrize("name", [n for n, s in GenerationRequest.specs().items() if s.low is not None])
def test_every_range_is_enforced_with_a_message_naming_the_value(name):
    spec = GenerationRequest.specs()[name]
    for bad in (spec.low - 1, spec.high + 1):
        with pytest.raises(GenerationParameterError) as info:
            GenerationRequest(**{name: spec.kind(bad)}).validate()
        assert str(info.value).startswith(f"{name} must be between {spec.low:g} and {spec.high:g}")
    GenerationRequest(form="through", **{name: spec.kind(spec.low)}).validate()
    GenerationRequest(**{name: spec.kind(spec.high)}).validate()


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_is_valid_from_its_own_length_and_refused_below_it(form):
    sections = FORMS[form][0]
    GenerationRequest(form=form, bars=max(1, len(sections))).validate()
    if len(sections) > 1:
        with pytest.raises(GenerationParameterError, match=f"Form {form} needs at least {len(sections)} bars"):
            GenerationRequest(form=form, bars=len(sections) - 1).validate()


def test_a_primer_in_another_metre_or_with_a_form_is_refused():
    request = remix_request(_primer(time_signature=(3, 4)), "bach")
    request.validate()
    with pytest.raises(GenerationParameterError, match="is in 3/4, not 4/4"):
        request.replace(time_signature="4/4").validate()
    with pytest.raises(GenerationParameterError, match="form 'through'"):
        request.replace(form="AABA", time_signature="3/4").validate()


def test_the_keep_mask_comes_from_the_seed_and_keeps_the_named_voices_whole():
    request = remix_request(_primer(bars=4), "bach", keep=("melody",), strength=0.5, seed=3)
    frames = 6 * 16  # two bars more than the primer: those are free
    mask = request.keep_mask(frames, np.random.default_rng(3))
    assert mask.shape == (frames, T.N_VOICES)
    assert mask[:64, T.VOICE_INDEX["lead"]].all() and not mask[64:].any()
    assert 0.35 < mask[:64, T.VOICE_INDEX["bass"]].mean() < 0.65
    assert np.array_equal(mask, request.keep_mask(frames, np.random.default_rng(3)))
    assert not np.array_equal(mask, request.keep_mask(frames, np.random.default_rng(4)))
    whole = request.replace(keep=("everything",)).keep_mask(64, np.random.default_rng(3))
    assert whole.all()
    rhythm = request.replace(keep=("rhythm",))
    assert rhythm.rhythm_of is rhythm.primer and rhythm.keep_mask(64, np.random.default_rng(0))[:, T.DRUM_VOICE].all()


def test_remix_of_a_very_slow_or_fast_file_keeps_a_tempo_we_compose_at():
    slow, fast = _primer(), _primer()
    slow.tempo, fast.tempo = 22.0, 380.0  # MIDI import accepts 20-400 bpm
    assert remix_request(slow, "doom").tempo == 30 and remix_request(fast, "doom").tempo == 300
    remix_request(slow, "doom").validate()


def test_remix_of_a_long_file_is_cut_to_the_longest_piece():
    request = remix_request(_primer(bars=MAX_BARS + 10), "doom")
    assert request.bars == MAX_BARS and request.primer.n_bars == MAX_BARS


def test_click_options_are_built_from_the_declaration():
    @click.command()
    @request_options("bars", "form", "keep", "temperature")
    def command(**params):
        click.echo(json.dumps(request_from_options(params).params()))

    runner = CliRunner()
    out = json.loads(runner.invoke(command, []).output)
    assert (out["bars"], out["form"], out["keep"], out["temperature"]) == (32, "AABA", ["melody"], 0.9)
    out = json.loads(runner.invoke(command, ["--bars", "8", "--form", "rondo", "--keep", "bass,drums"]).output)
    assert (out["bars"], out["form"], out["keep"]) == (8, "rondo", ["bass", "drums"])
    refused = runner.invoke(command, ["--bars", str(MAX_BARS + 1)])
    assert refused.exit_code == 2 and "1<=x<=128" in refused.output
    refused = runner.invoke(command, ["--temperature", "5"])
    assert refused.exit_code == 2 and "0.1<=x<=2.0" in refused.output
    refused = runner.invoke(command, ["--keep", "melody,tuba"])
    assert refused.exit_code == 2 and "unknown tuba" in refused.output
    help_text = runner.invoke(command, ["--help"]).output
    assert "How sections repeat" in help_text and "rondo" in help_text


def test_music_longer_than_the_limit_is_refused_with_a_clear_answer():
    from composer.errors import GenerationParameterError
    from composer.generate.request import MAX_MUSIC_SECONDS, extend_request

    slow = GenerationRequest(style="doom", bars=MAX_BARS, tempo=30, time_signature="4/4")
    assert slow.music_seconds == 1024
    with pytest.raises(GenerationParameterError, match=r"128 bars of 4/4 at 30 bpm would last 17\.1 minutes; "
                                                        r"the most I make is 10 minutes"):
        slow.validate()
    GenerationRequest(style="doom", bars=MAX_BARS, tempo=60, time_signature="3/4").validate()  # 384 s
    assert GenerationRequest(bars=40, tempo=120).music_seconds == 80
    assert GenerationRequest(bars=10, time_signature="6/8", tempo=60).music_seconds == 30
    # A remix of a slow 8/4 file starts from the bars that fit; extending it stops at the limit.
    source = _primer(bars=64, time_signature=(8, 4))
    source.tempo = 20.0
    remix = remix_request(source, "doom")
    assert remix.tempo == 30 and remix.bars == 37 and remix.music_seconds <= MAX_MUSIC_SECONDS
    remix.validate()
    longer = extend_request(remix.primer, remix, bars=2)
    with pytest.raises(GenerationParameterError, match="39 bars of 8/4 at 30 bpm would last 10.4 minutes"):
        longer.validate()
