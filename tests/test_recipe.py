"""The v2 recipe: stages that resume after a stop, and the two-network composer they make."""

import json

import numpy as np
import pytest
import torch

from composer.music import tokens as T
from composer.nn.data import WindowSampler
from composer.errors import MozartError
from composer.generate.draft import is_continuation
from composer.generate.generator import Generator
from composer.nn.recipe import run_recipe, stage_finished
from composer.generate.request import GenerationRequest, extend_request
from tests.conftest import write_recipe

class Stopped(Exception):
    """Stands for the machine going down in the middle of a stage."""


@pytest.fixture(scope="module")
def composer_dir(tmp_path_factory, encoded_dir):
    root = tmp_path_factory.mktemp("recipe")
    recipe = write_recipe(root / "tiny.json", encoded_dir)
    out = root / "run"
    original = WindowSampler.sample
    calls = {"n": 0}

    def failing(self, n):
        calls["n"] += 1
        if calls["n"] == 6 + 4:  # the 4th step of the second stage: it saved at step 2
            raise Stopped
        return original(self, n)

    WindowSampler.sample = failing
    try:
        with pytest.raises(Stopped):
            run_recipe(recipe, out, quiet=True)
    finally:
        WindowSampler.sample = original
    return root, recipe, out


def test_recipe_resumes_a_stopped_stage_and_skips_a_finished_one(composer_dir):
    root, recipe, out = composer_dir
    infill, draft = out / "stages" / "infill", out / "stages" / "draft"
    assert stage_finished(infill) and not stage_finished(draft)
    infill_written = (infill / "model.safetensors").stat().st_mtime_ns

    model_dir = run_recipe(recipe, out, quiet=True)

    assert stage_finished(draft)
    assert (infill / "model.safetensors").stat().st_mtime_ns == infill_written  # not trained again
    steps = [json.loads(line)["step"] for line in (draft / "metrics.jsonl").read_text().splitlines()
             if "validation" not in line]
    assert steps.count(1) == 1 and max(steps) == 6  # resumed after step 2, not restarted
    assert steps == [1, 2, 3, 3, 4, 5, 6]  # step 3 was done twice: it came after the last save
    assert (model_dir / "draft" / "model.safetensors").exists() and (model_dir / "originality.npz").exists()


def test_the_assembled_composer_drafts_and_keeps_forms_and_extensions(composer_dir):
    _, recipe, out = composer_dir
    model_dir = run_recipe(recipe, out, quiet=True)  # finished: only re-assembles
    generator = Generator.load(model_dir, device="cpu")
    assert generator.draft is not None and generator.version.startswith("tiny-")
    style = generator.catalog.names()[0]
    piece = generator.generate(GenerationRequest(style=style, bars=8, form="AABA", seed=3, variation=0.0))
    fpb = piece.frames_per_bar
    assert piece.n_bars == 8
    assert np.array_equal(piece.grid[: 2 * fpb], piece.grid[2 * fpb : 4 * fpb])  # the theme returns intact
    assert np.array_equal(piece.grid[: 2 * fpb], piece.grid[6 * fpb : 8 * fpb])

    longer = generator.generate(extend_request(piece, GenerationRequest(style=style), bars=4, seed=4))
    assert longer.n_bars == 12
    assert np.array_equal(longer.grid[: 8 * fpb], piece.grid)  # an extension keeps every cell it continues
    again = generator.generate(extend_request(piece, GenerationRequest(style=style), bars=4, seed=4))
    assert np.array_equal(again.grid, longer.grid)  # the seed decides everything


def test_a_recipe_must_give_each_network_its_kind(tmp_path, encoded_dir):
    recipe = write_recipe(tmp_path / "bad.json", encoded_dir)
    data = json.loads(recipe.read_text())
    data["stages"][1]["model"]["arch"] = "td_bilstm"  # a bidirectional model cannot draft left to right
    recipe.write_text(json.dumps(data))
    with pytest.raises(MozartError, match="next-frame"):
        run_recipe(recipe, tmp_path / "run", quiet=True)


def test_only_whole_frames_after_every_fixed_cell_can_be_drafted():
    free = torch.zeros((8, T.N_VOICES), dtype=torch.bool)
    assert is_continuation(free)  # nothing to write
    free[4:] = True
    assert is_continuation(free)  # an extension
    free[:] = True
    assert is_continuation(free)  # a new piece
    free[2, 0] = False
    assert not is_continuation(free)  # a kept cell inside: infilling
    free[:] = False
    free[:4] = True
    assert not is_continuation(free)  # a fixed ending: the draft could not lead into it


def test_the_model_card_describes_both_networks_and_the_recipe(composer_dir, encoded_dir):
    from composer.nn.card import build_card

    _, recipe, out = composer_dir
    card = build_card(run_recipe(recipe, out, quiet=True), encoded_dir, test_windows=4)
    assert "**draft** `td_lstm`" in card and "**infiller** `td_bilstm`" in card
    assert "--recipe configs/tiny.json" in card
    assert card.count("| step | minutes | validation NLL |") == 2  # a learning curve per network


def test_a_drafted_loop_rewrites_only_its_opening_to_follow_its_end(composer_dir):
    from composer.generate.loops import LOOP_SEAM_BARS

    _, recipe, out = composer_dir
    generator = Generator.load(run_recipe(recipe, out, quiet=True), device="cpu")
    style = generator.catalog.names()[0]
    plain = generator.generate(GenerationRequest(style=style, bars=8, form="through", seed=9))
    looped = generator.generate(GenerationRequest(style=style, bars=8, form="through", seed=9, loop=True))
    head = LOOP_SEAM_BARS * plain.frames_per_bar
    assert np.array_equal(looped.grid[head:], plain.grid[head:])  # the rest of the piece is the same draft
    assert not np.array_equal(looped.grid[:head], plain.grid[:head])  # the opening now continues the end
    assert looped.extra["loop"] and looped.n_bars == 8
