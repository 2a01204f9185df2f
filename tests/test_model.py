"""The composer network and its training: loss falls, no leaks, checkpoints round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from composer.music import tokens as T
from composer.nn.checkpoint import load_checkpoint, save_checkpoint
from composer.corpus.encoded import load_split
from composer.nn.data import WindowSampler, make_mask, to_model_inputs
from composer.errors import CheckpointError
from composer.nn.model import ARCHITECTURES, GridModel, ModelConfig
from composer.nn.train import TrainConfig, evaluate, loss_and_counts


def _batch(encoded_dir, batch_size=8, seed=0):
    split = load_split(encoded_dir, "train")
    sampler = WindowSampler(split, 64, seed=seed)
    return sampler.sample(batch_size)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_learns_a_few_steps(arch, encoded_dir):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = GridModel(ModelConfig.tiny(arch=arch, n_games=2, n_composers=2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = _batch(encoded_dir)
    hidden = None if model.config.causal else make_mask(8, 64, batch["frames_per_bar"], rng)
    inputs = to_model_inputs(batch, hidden, 2, 2, 0.0, rng, "cpu")
    losses = []
    for _ in range(25):
        loss, _, _ = loss_and_counts(model, inputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_the_causal_model_sees_the_past_and_never_the_present(encoded_dir):
    """The next-frame baseline must get the real music as input (shifted by one frame)."""
    rng = np.random.default_rng(0)
    batch = _batch(encoded_dir, 2)
    inputs = to_model_inputs(batch, None, 2, 2, 0.0, rng, "cpu")
    assert torch.equal(inputs["inputs"], inputs["targets"])
    assert inputs["weights"].sum() == batch["valid"].sum() * T.N_VOICES
    model = GridModel(ModelConfig.tiny(arch="lstm", n_games=2, n_composers=2)).eval()
    args = (inputs["game"], inputs["composer"], inputs["frames_per_bar"])
    base = model(inputs["inputs"], *args)
    changed = inputs["inputs"].clone()
    changed[:, 10] = (changed[:, 10] + 1) % 8
    after = model(changed, *args)
    assert all(torch.equal(a[:, :11], b[:, :11]) for a, b in zip(base, after))  # frame 10 is not seen at 10
    assert any(not torch.equal(a[:, 11:], b[:, 11:]) for a, b in zip(base, after))  # but shapes what follows


def test_hidden_cells_never_leak_into_the_input(encoded_dir):
    rng = np.random.default_rng(1)
    batch = _batch(encoded_dir, 4)
    hidden = make_mask(4, 64, batch["frames_per_bar"], rng)
    inputs = to_model_inputs(batch, hidden, 2, 2, 0.0, rng, "cpu")
    mask_ids = torch.tensor(T.VOCAB_SIZES).expand_as(inputs["inputs"])
    assert torch.equal(inputs["inputs"][torch.from_numpy(hidden)], mask_ids[torch.from_numpy(hidden)])
    # Scrambling the true tokens of hidden cells changes nothing the model sees.
    scrambled = dict(batch, tokens=batch["tokens"].copy())
    scrambled["tokens"][hidden] = 0
    again = to_model_inputs(scrambled, hidden, 2, 2, 0.0, np.random.default_rng(1), "cpu")
    assert torch.equal(again["inputs"], inputs["inputs"])
    # ...and the loss only scores hidden cells.
    assert torch.equal(inputs["weights"].bool(), torch.from_numpy(hidden & batch["valid"][..., None]))


def test_training_lowers_validation_nll(tiny_checkpoint, encoded_dir):
    """The trained network predicts held-out cells better than the same network untrained,
    scored the same way on the same validation windows and masks."""
    model, meta = load_checkpoint(tiny_checkpoint)
    cfg = TrainConfig(data=str(encoded_dir), window_bars=4, val_max_windows=8)
    split = load_split(encoded_dir, "valid")
    games, composers = len(meta.games), len(meta.composers)
    torch.manual_seed(0)
    untrained = GridModel(meta.model)
    before = evaluate(untrained, split, cfg, "cpu", games, composers)["nll"]
    after = evaluate(model, split, cfg, "cpu", games, composers)["nll"]
    assert after < before - 0.5, (before, after)
    assert meta.training["val_nll"] < 3.0  # far below uniform guessing (log 90 = 4.5 nats)
    assert set(meta.training["val_nll_per_voice"]) == set(T.VOICES)


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, tiny_checkpoint):
    model, meta = load_checkpoint(tiny_checkpoint)
    tokens = torch.randint(0, 8, (2, 32, T.N_VOICES))
    args = (tokens, torch.tensor([0, 2]), torch.tensor([2, 1]), torch.tensor([16, 12]))
    before = model(*args)
    save_checkpoint(tmp_path / "copy", model, meta)
    loaded, meta2 = load_checkpoint(tmp_path / "copy")
    after = loaded(*args)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert meta2.games == meta.games and meta2.aliases == {"zelda": "dink"}
    # fp16 shipping copy: close, not identical
    save_checkpoint(tmp_path / "half", model, meta, half=True)
    half, _ = load_checkpoint(tmp_path / "half")
    assert all(torch.allclose(a, b, atol=5e-2) for a, b in zip(before, half(*args)))
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < (tmp_path / "copy" / "model.safetensors").stat().st_size


def test_missing_or_mismatched_checkpoint_is_a_clear_error(tmp_path, tiny_checkpoint):
    with pytest.raises(CheckpointError, match="No Mozart checkpoint"):
        load_checkpoint(tmp_path)
    model, meta = load_checkpoint(tiny_checkpoint)
    meta.model.hidden = 32
    save_checkpoint(tmp_path / "bad", model, meta)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "bad")


def test_training_resumes_where_it_stopped(tmp_path, encoded_dir):
    from composer.nn.train import train

    cfg = TrainConfig(data=str(encoded_dir), window_bars=4, batch_size=4, max_steps=4, steps_per_epoch=2,
                      warmup_steps=1, val_max_windows=2, patience=10)
    train(cfg, ModelConfig.tiny(), tmp_path / "run", quiet=True)
    cfg.max_steps = 6
    summary = train(cfg, ModelConfig.tiny(), tmp_path / "run", resume=True, quiet=True)
    steps = [r["step"] for r in summary["curve"]]
    assert steps == [2, 4, 6]


def test_sounding_notes_follow_holds_and_stop_at_rests_and_hidden_cells():
    from composer.nn.model import sounding_notes

    mask = T.PITCHED_VOCAB
    lead = [T.HOLD, T.onset(60), T.HOLD, T.HOLD, T.REST, T.HOLD, T.onset(62), mask, T.HOLD]
    tokens = torch.zeros((1, len(lead), T.N_VOICES), dtype=torch.long)
    tokens[0, :, 0] = torch.tensor(lead)
    source, sounding = sounding_notes(tokens)
    assert sounding[0, :, 0].tolist() == [0, 1, 1, 1, 0, 0, 1, 0, 0]
    assert source[0, 1:4, 0].tolist() == [T.onset(60)] * 3 and source[0, 6, 0] == T.onset(62)


def test_harmony_features_are_for_bidirectional_models_only():
    """A window-wide key profile would show a next-frame model its future."""
    assert GridModel(ModelConfig.tiny(harmony=True)).uses_harmony
    assert not GridModel(ModelConfig.tiny(harmony=True, arch="lstm")).uses_harmony


def test_the_model_card_measures_the_held_out_splits(tiny_checkpoint, encoded_dir):
    from composer.nn.card import build_card

    card = build_card(tiny_checkpoint, encoded_dir, test_windows=8)
    assert "| valid |" in card and "| test |" in card
    assert "| mozart | composer | 5 | " in card  # label facts from the corpus manifest the training read
    assert build_card(tiny_checkpoint, encoded_dir.parent, test_windows=8) == card  # the data root reads the same


def test_a_metre_longer_than_the_tables_reads_as_the_longest_instead_of_crashing():
    from composer.nn.model import MAX_FRAMES_PER_BAR

    model = GridModel(ModelConfig.tiny(n_games=1, n_composers=1)).eval()
    tokens = GridModel.mask_ids().expand(1, 2 * MAX_FRAMES_PER_BAR, -1).clone()
    labels = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        longest = model(tokens, labels, labels, torch.tensor([MAX_FRAMES_PER_BAR]))
        longer = model(tokens, labels, labels, torch.tensor([MAX_FRAMES_PER_BAR + 4]))  # a folk tune in 9/4
    assert all(torch.equal(a, b) for a, b in zip(longest, longer))


def test_the_stepwise_lstm_computes_what_torch_computes():
    import torch

    from composer.nn.model import lstm_step

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(12, 16, 3, batch_first=True, dropout=0.1).eval()
    frames = torch.randn(2, 5, 12)
    with torch.no_grad():
        expected, (h, c) = lstm(frames)
        state = None
        for t in range(5):
            out, state = lstm_step(lstm, frames[:, t], state)
            assert torch.allclose(out, expected[:, t], atol=1e-5)
    assert torch.allclose(state[0], h, atol=1e-5) and torch.allclose(state[1], c, atol=1e-5)


def test_a_causal_model_reads_fixed_frames_in_one_call_as_it_would_one_by_one():
    import torch

    model = GridModel(ModelConfig.tiny(arch="td_lstm", n_games=2, n_composers=2)).eval()
    tokens = torch.randint(0, 3, (1, 20, T.N_VOICES))
    labels = torch.tensor([0]), torch.tensor([1]), torch.tensor([16])
    start = GridModel.mask_ids().expand(1, 1, -1)
    inputs = torch.cat([start, tokens[:, :-1]], 1)
    whole, _ = model.step(inputs, *labels, 0)  # 20 frames at once: the fused kernel
    state = None
    for t in range(20):
        one, state = model.step(inputs[:, t : t + 1], *labels, t, state)  # frame by frame: lstm_step
    full = model(tokens, *labels)  # the training-time forward
    for v in range(T.N_VOICES):
        assert torch.allclose(whole[v], one[v], atol=1e-5) and torch.allclose(one[v], full[v][:, -1], atol=1e-5)


def test_a_misspelt_model_option_is_refused_not_dropped(tmp_path, tiny_checkpoint):
    with pytest.raises(ValueError, match="unknown model options: hiden"):
        ModelConfig.from_dict({**ModelConfig.tiny().__dict__, "hiden": 64})
    # A checkpoint whose config carries one says so, instead of loading another network.
    import json
    import shutil

    folder = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model"]["hiden"] = 64
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="hiden"):
        load_checkpoint(folder)
