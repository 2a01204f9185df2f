"""ComposerFolder, the model folder's one owner: what it reads, ships and copies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from composer.errors import CheckpointError
from composer.generate.generator import Generator
from composer.generate.request import GenerationRequest
from composer.nn.checkpoint import load_checkpoint, save_checkpoint
from composer.nn.folder import COMPANIONS, CRITIC_CONFIG, CRITIC_WEIGHTS, REWARD, ComposerFolder


@pytest.fixture
def folder(tiny_composer, tmp_path):
    """A copy of the tiny composer with stand-ins for the judges' files (a shipped model must keep them)."""
    copy = shutil.copytree(tiny_composer, tmp_path / "model")
    for name in (REWARD, CRITIC_CONFIG, CRITIC_WEIGHTS):
        (copy / name).write_bytes(f"stand-in {name}".encode())
    return ComposerFolder(copy)


def test_networks_are_the_infiller_and_its_draft(folder):
    model, meta, draft, draft_meta = folder.networks()
    assert not model.config.causal and draft.config.causal
    assert (draft_meta.games, draft_meta.composers) == (meta.games, meta.composers)


def test_a_draft_that_is_not_next_frame_is_refused(folder):
    infiller, meta = load_checkpoint(folder.path)
    save_checkpoint(folder.draft, infiller, meta)
    with pytest.raises(CheckpointError, match="must be a next-frame model"):
        folder.networks()


def test_ship_keeps_both_networks_and_every_companion(folder, tmp_path):
    shipped = folder.ship(tmp_path / "shipped")
    assert shipped.draft.is_dir()
    for name in COMPANIONS:
        assert (shipped.path / name).read_bytes() == (folder.path / name).read_bytes(), name


def test_card_ship_goes_through_the_folder(tiny_composer, encoded_dir, tmp_path):
    from composer.cli.card import card_command

    result = CliRunner().invoke(card_command, ["--checkpoint", str(tiny_composer), "--data", str(encoded_dir),
                                               "--out", str(tmp_path / "CARD.md"), "--ship", str(tmp_path / "ship")])
    assert result.exit_code == 0, result.output
    request = GenerationRequest(style="dink-bach", bars=4, seed=3, steps=4)
    original, shipped = Generator.load(tiny_composer), Generator.load(tmp_path / "ship")
    assert np.array_equal(original.generate(request).grid, shipped.generate(request).grid)  # fp16 already
    assert sorted(p.name for p in (tmp_path / "ship").iterdir()) == sorted(p.name for p in tiny_composer.iterdir()
                                                                           if p.name in {*COMPANIONS, "draft",
                                                                                         "config.json",
                                                                                         "model.safetensors"})


def test_install_reward_needs_a_model_folder(tmp_path):
    source = tmp_path / "reward.json"
    source.write_text("{}")
    with pytest.raises(CheckpointError, match="names a model folder"):
        ComposerFolder(tmp_path / "nothing").install_reward(source)
