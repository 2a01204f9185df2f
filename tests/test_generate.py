"""Generation: exact length, reproducible seeds, forms, keep-masks, styles."""

from __future__ import annotations

import numpy as np
import pytest

from composer.music import tokens as T
from composer.errors import GenerationParameterError, UnknownStyleError
from composer.generate.request import (
    GenerationRequest,
    extend_request,
    remix_request,
    section_lengths,
    variation_request,
)
from composer.music.midi_io import import_midi, to_midi
from composer.music.grid import clean_holds


@pytest.mark.parametrize("bars, ts", [(1, "4/4"), (7, "4/4"), (5, "3/4"), (3, "6/8")])
def test_bars_gives_exactly_that_many_bars(generator, bars, ts):
    piece = generator.generate(GenerationRequest(style="doom", bars=bars, time_signature=ts, seed=1, steps=4,
                                                 form="through"))
    assert piece.n_bars == bars
    assert piece.n_frames == bars * piece.frames_per_bar
    assert import_midi(to_midi(piece)).n_bars == bars


def test_same_seed_same_midi_different_seed_different_piece(generator):
    request = dict(style="zelda-bach", bars=8, seed=42, steps=6, form="AABA")
    a = to_midi(generator.generate(GenerationRequest(**request)))
    b = to_midi(generator.generate(GenerationRequest(**request)))
    c = to_midi(generator.generate(GenerationRequest(**{**request, "seed": 43})))
    assert a == b
    assert a != c


def test_batched_generation_matches_one_at_a_time(generator):
    requests = [GenerationRequest(style=s, bars=4, seed=s_, steps=4) for s, s_ in (("doom", 1), ("bach", 2))]
    together = generator.generate_many(requests)
    alone = [generator.generate(GenerationRequest(style=r.style, bars=4, seed=r.seed, steps=4)) for r in requests]
    for x, y in zip(together, alone):
        assert np.array_equal(x.grid, y.grid)


@pytest.mark.parametrize("form, layout", [("AABA", "AABA"), ("ABAC", "ABAC"), ("rondo", "ABACA")])
def test_forms_repeat_section_a(generator, form, layout):
    piece = generator.generate(GenerationRequest(style="doom-mozart", bars=17, form=form, seed=3, steps=4, variation=0.0))
    fpb = piece.frames_per_bar
    lengths = section_lengths(17, layout)
    expected = [label for label, n in zip(layout, lengths) for _ in range(n)]
    assert piece.sections == expected
    starts = np.cumsum([0] + lengths[:-1])
    a_len = lengths[0] * fpb
    first = piece.grid[:a_len]
    for label, start in zip(layout, starts):
        if label == "A":
            # Every A is a copy of the first (variation=0), so the theme comes back.
            assert np.array_equal(piece.grid[start * fpb : start * fpb + a_len], first)


def test_variation_changes_repeats_a_little(generator):
    exact = generator.generate(GenerationRequest(style="doom", bars=8, form="AABA", seed=5, steps=4, variation=0.0))
    varied = generator.generate(GenerationRequest(style="doom", bars=8, form="AABA", seed=5, steps=4, variation=0.5))
    fpb = exact.frames_per_bar
    second_a = slice(2 * fpb, 4 * fpb)
    assert np.array_equal(exact.grid[:fpb * 2], varied.grid[:fpb * 2])  # the first A never changes
    assert not np.array_equal(exact.grid[second_a], varied.grid[second_a])


def test_kept_cells_never_change_and_come_from_the_seed(generator):
    source = generator.generate(GenerationRequest(style="doom", bars=4, seed=9, steps=4))
    request = remix_request(source, "bach", keep=("bass",), strength=0.5, seed=10, steps=6)
    keep = request.keep_mask(source.n_frames, np.random.default_rng(10))
    assert keep[:, T.VOICE_INDEX["bass"]].all() and 0.3 < keep.mean() < 0.8
    piece = generator.generate(request)
    # clean_holds may only turn an orphan hold into a rest; kept onsets and rests stay.
    kept = keep & (source.grid != T.HOLD)
    assert np.array_equal(piece.grid[kept], source.grid[kept])
    assert np.array_equal(generator.generate(request).grid, piece.grid)  # the same seed, the same remix


def test_extend_keeps_the_original_and_adds_bars(generator):
    piece = generator.generate(GenerationRequest(style="doom", bars=4, seed=11, steps=4))
    base = GenerationRequest.from_params(piece.extra["params"])
    longer = generator.generate(extend_request(piece, base, bars=8, seed=12))
    assert longer.n_bars == 12
    assert np.array_equal(longer.grid[: piece.n_frames], piece.grid)


def test_remix_keeps_the_melody(generator):
    source = generator.generate(GenerationRequest(style="doom", bars=4, seed=13, steps=4))
    remix = generator.generate(remix_request(source, "bach", keep=("melody", "drums"), strength=1.0, seed=1, steps=4))
    assert np.array_equal(remix.grid[:, 0], source.grid[:, 0])
    assert np.array_equal(remix.grid[:, 4], source.grid[:, 4])
    rhythm = generator.generate(remix_request(source, "bach", keep=("rhythm",), strength=1.0, seed=1, steps=4))
    kind = lambda g: np.minimum(g[:, :4], 2)  # noqa: E731  0 rest, 1 hold, 2 onset
    assert np.array_equal(kind(rhythm.grid), kind(clean_holds(source.grid)))
    with pytest.raises(GenerationParameterError, match="Unknown keep 'tuba'. Choose from: melody, bass"):
        generator.prepare(remix_request(source, "bach", keep=("tuba",)))


def test_variation_request_resamples_a_share(generator):
    piece = generator.generate(GenerationRequest(style="doom", bars=4, seed=14, steps=4))
    base = GenerationRequest.from_params(piece.extra["params"])
    other = generator.generate(variation_request(piece, base, share=0.3, seed=15))
    same = np.mean(other.grid == piece.grid)
    assert 0.6 < same < 1.0


def test_styles_resolve_and_unknown_style_is_a_clear_error(generator):
    style = generator.catalog.resolve("Zelda-Bach")
    assert (style.game, style.composer) == ("dink", "bach")
    assert generator.catalog.resolve("mozart").game is None
    with pytest.raises(UnknownStyleError) as info:
        generator.generate(GenerationRequest(style="zelda-bahc", bars=2, form="through"))
    message = str(info.value)
    assert "zelda-bach" in message and "Known games: dink, doom, zelda" in message
    assert generator.catalog.suggest("zel")[0] == "zelda"


@pytest.mark.parametrize("field, value, message", [
    ("bars", 0, "bars must be between 1 and 128 (received 0)"),
    ("bars", 129, "bars must be between 1 and 128 (received 129)"),
    ("temperature", 0.0, "temperature must be between 0.1 and 2 (received 0)"),
    ("top_p", 1.5, "top_p must be between 0.05 and 1 (received 1.5)"),
    ("form", "sonata", "Unknown form 'sonata'. Choose from: AABA, ABAC, rondo"),
    ("key", "H major", "unknown tonic 'H'"),
    ("time_signature", "5/3", "Unsupported time signature 5/3"),
    ("time_signature", "waltz", "not of the form 3/4"),
])
def test_out_of_range_parameters_are_refused_naming_the_value(generator, field, value, message):
    with pytest.raises(GenerationParameterError) as info:
        generator.generate(GenerationRequest(style="doom", **{"bars": 4, field: value}))
    assert message in str(info.value)


def test_requested_key_and_tempo_are_honoured(generator):
    piece = generator.generate(GenerationRequest(style="bach", bars=4, seed=2, steps=4, key="D minor", tempo=90))
    assert piece.key == "D minor" and piece.tempo == 90
    assert piece.extra["seed"] == 2 and piece.extra["params"]["steps"] == 4


def test_originality_finds_a_copied_training_piece_and_clears_a_silent_lead(generator, encoded_dir):
    from composer.corpus.encoded import load_split

    train = load_split(encoded_dir, "train")
    copied = train.piece(0)
    bars, source = generator.originality_of(copied)
    assert source == train.ids[0] and bars >= 2  # a copy is reported, with the piece it copies
    silent = generator.generate(GenerationRequest(style="doom", bars=4, seed=21, steps=4))
    silent.grid[:, T.VOICE_INDEX["lead"]] = T.REST
    assert generator.originality_of(silent)[0] == 0.0



def test_leap_sizes_measure_semitones_beyond_a_third_from_both_neighbours():
    import torch

    from composer.generate.sampling import leap_sizes

    column = torch.tensor([T.onset(60), T.HOLD, 999, T.REST, T.onset(67)])  # 999 stands for a hidden cell
    column[2] = T.PITCHED_VOCAB  # the MASK token: not a note
    columns = torch.stack([column, torch.full_like(column, T.REST)], 1)  # the second voice is silent
    sizes = leap_sizes(columns, torch.tensor([2, 0, 2]), torch.tensor([0, 0, 1]))
    at = lambda pitch: pitch - T.PITCH_MIN  # noqa: E731  column of a candidate pitch
    assert sizes[0, at(62)] == 0 + 1  # 2 up from C4 (free), 5 down from G4 (1 beyond a major third)
    assert sizes[0, at(72)] == 8 + 1  # 12 from C4, 5 from G4
    assert sizes[1, at(60)] == 3  # first cell: no note before; next note G4 is 7 away
    assert sizes[2].sum() == 0  # another voice's notes are not this voice's neighbours


def test_guidance_is_reproducible_and_changes_the_piece(generator):
    guided = generator.generate(GenerationRequest(style="doom-bach", bars=4, seed=3, steps=4, guidance=1.0))
    again = generator.generate(GenerationRequest(style="doom-bach", bars=4, seed=3, steps=4, guidance=1.0))
    assert np.array_equal(guided.grid, again.grid)
    # The tiny model barely tells styles apart, so a single seed may draw the same cells.
    changed = [not np.array_equal(
        generator.generate(GenerationRequest(style="doom-bach", bars=8, seed=seed, steps=4, guidance=0.0)).grid,
        generator.generate(GenerationRequest(style="doom-bach", bars=8, seed=seed, steps=4, guidance=2.0)).grid)
        for seed in range(3, 7)]
    assert any(changed)
    with pytest.raises(GenerationParameterError, match="guidance"):
        GenerationRequest(style="doom", guidance=-1).validate()


def test_a_near_silent_piece_is_composed_again_and_still_replays(generator, monkeypatch):
    """Silence can feed on itself in a draft; such a piece is composed again from seeds drawn
    from its own, so the same request still gives the same piece."""
    from composer.generate import generator as G

    compose = G.Generator._compose_group
    seeds = []

    def silent_first(self, reqs, styles, progress):
        grids = compose(self, reqs, styles, progress)
        seeds.append(reqs[0].seed)
        if len(seeds) % 3 == 1:  # the first attempt of each request: rests and drums only
            grids[:, :, : T.DRUM_VOICE] = T.REST
        return grids

    monkeypatch.setattr(G.Generator, "_compose_group", silent_first)
    request = GenerationRequest(style="doom", bars=4, seed=11)
    piece = generator.generate(request)
    assert G.notes_per_bar(piece) >= G.SILENT_NOTES_PER_BAR
    assert piece.extra["seed"] == 11 and seeds[:2] == [11, G.retry_seeds(11)[0]]
    seeds.clear()
    again = generator.generate(request)
    assert (again.grid == piece.grid).all()


def test_a_blend_gives_each_section_to_one_parent(generator):
    from composer.generate.conditions import BLEND_HINT, blend_over_frames

    style = generator.catalog.resolve("doom-bach")
    request = generator.prepare(GenerationRequest(style="doom-bach", bars=16, form="AABA", seed=3, blend=0.5)).request
    share = blend_over_frames(request, style, 16)[::16]  # per bar
    a, b = share[0].item(), share[8].item()
    assert {round(a, 2), round(b, 2)} == {BLEND_HINT, 1 - BLEND_HINT}  # theme and bridge: one parent each
    assert share[:8].eq(a).all() and share[12:].eq(a).all()  # the theme keeps its parent when it returns
    for blend, expected in ((0.0, BLEND_HINT), (1.0, 1 - BLEND_HINT)):
        one = blend_over_frames(request.replace(blend=blend), style, 16)
        assert one.eq(expected).all()
    for seed in range(4):  # blend moves the bars towards the composer: the bridge at 0.2, the theme at 0.8
        for blend, theme, bridge in ((0.2, BLEND_HINT, 1 - BLEND_HINT), (0.8, 1 - BLEND_HINT, BLEND_HINT)):
            moved = blend_over_frames(request.replace(blend=blend, seed=seed), style, 16)[::16]
            assert moved[0].item() == pytest.approx(theme) and moved[8].item() == pytest.approx(bridge)
    through = request.replace(form="through", bars=32, blend=0.25)
    per_phrase = blend_over_frames(through, style, 16)[::16 * 8]
    assert sorted(per_phrase.tolist()) == pytest.approx([BLEND_HINT] * 3 + [1 - BLEND_HINT])  # a quarter of the phrases
    single = generator.catalog.resolve("doom")
    assert blend_over_frames(request.replace(style="doom"), single, 16) == request.blend
    assert blend_over_frames(request.replace(texture=0.0), style, 16) == request.blend  # as v2 composed
    piece = generator.generate(request)
    again = generator.generate(request)
    assert (piece.grid == again.grid).all()


def test_a_next_frame_network_infills_by_drafting_and_gibbs_refuses_it():
    """A v1 causal baseline's one network cannot see ahead: ``infill`` drafts with it, left to
    right, and ``gibbs`` refuses it rather than sampling from a network that reads one side only."""
    import torch

    from composer.generate.batch import Batch
    from composer.generate.conditions import Condition
    from composer.generate.draft import draft_left_to_right
    from composer.generate.infill import gibbs, infill
    from composer.nn.model import GridModel, ModelConfig

    torch.manual_seed(0)
    network = GridModel(ModelConfig.tiny(arch="td_lstm")).eval()

    def batch():
        return Batch([GenerationRequest(bars=1, seed=1)], [Condition(0, 1, 1, 1.0, 1.0)], 16, 4,
                     [torch.Generator().manual_seed(1)], torch.device("cpu"))

    x = GridModel.mask_ids().expand(1, 16, -1).clone()
    free = torch.ones((1, 16, T.N_VOICES), dtype=torch.bool)
    with torch.no_grad():
        drafted = infill(network, x, free, batch(), lambda f: None)
        assert not drafted.eq(GridModel.mask_ids()).any()
        assert torch.equal(drafted, draft_left_to_right(network, x, free, batch(), lambda f: None))
        with pytest.raises(ValueError, match="bidirectional"):
            gibbs(network, x, free, batch(), lambda f: None, 4)


def test_the_infiller_runs_in_the_precision_asked_and_replays(tiny_checkpoint):
    """bfloat16 (auto where the CPU multiplies it natively: 2.8x faster BiLSTM passes on the CI
    machine) composes a whole piece that replays from its seed; float32 stays available."""
    import torch

    from composer.generate.generator import Generator
    from composer.nn.model import choose_precision

    seen = []
    request = GenerationRequest(style="zelda-bach", bars=8, seed=5, steps=4, form="AABA")
    pieces = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        generator = Generator.load(tiny_checkpoint, device="cpu", precision=name)
        hook = generator.model.lstm.register_forward_hook(lambda m, args, out: seen.append(out[0].dtype))
        pieces[name] = generator.generate(request)
        hook.remove()
        assert set(seen) == {dtype}, name  # every pass of the infiller ran in it
        seen.clear()
        assert to_midi(generator.generate(request)) == to_midi(pieces[name])
        assert pieces[name].n_bars == 8 and pieces[name].note_count() > 0
    assert choose_precision("auto", torch.device("meta")) is None  # off the CPU: float32
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        choose_precision("half", torch.device("cpu"))
