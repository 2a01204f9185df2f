"""Replay: batches of corpus windows trained on beside the ratings, with the network's own training loss, so
a fine-tuned model does not forget the corpus."""

from __future__ import annotations

import numpy as np
import torch

from composer.evaluate.likelihood import label_map
from composer.nn.checkpoint import CheckpointMeta
from composer.nn.data import WindowSampler, make_mask, to_model_inputs
from composer.nn.model import GridModel
from composer.nn.train import TrainConfig, loss_and_counts


REPLAY_STREAM = 4  # the seed's random stream for the corpus windows (finetune.py and rated_windows.py have 1-3)
CORPUS_CHECK_WINDOWS = 32  # held-out corpus windows scored before and after (forgetting)


# --- replay: the corpus, so the model does not forget ---------------------------------------

class Replay:
    """Corpus windows from the train split, their labels mapped onto the base's by name."""

    def __init__(self, data: str, meta: CheckpointMeta, base_train: TrainConfig, window_frames: int, seed: int):
        from composer.corpus.encoded import load_meta, load_split

        self.manifest_hash = load_meta(data)["manifest_sha256"]
        self.meta, self.train_cfg = meta, base_train
        self.split = load_split(data, "train")
        self.sampler = WindowSampler(self.split, window_frames, base_train.max_transpose, base_train.label_balance,
                                     seed=seed)
        self.rng = np.random.default_rng([seed, REPLAY_STREAM])
        try:
            check = load_split(data, "valid")
        except (OSError, KeyError):
            check = self.split
        batch = WindowSampler(check, window_frames, 0, seed=seed).sample(CORPUS_CHECK_WINDOWS)
        self.check_batch = self._relabel(batch, check)

    def _relabel(self, batch: dict, split) -> dict:
        """The corpus' label indices as the base's (an unknown label and -1 become its "none")."""
        for kind, names, known in (("game", split.games, self.meta.games),
                                   ("composer", split.composers, self.meta.composers)):
            batch[kind] = label_map(names, known)[np.asarray(batch[kind], np.int64)]
        return batch

    def inputs(self, network: GridModel, batch: dict, rng: np.random.Generator, device, style_dropout: float) -> dict:
        hidden = None if network.config.causal else \
            make_mask(len(batch["tokens"]), batch["tokens"].shape[1], batch["frames_per_bar"], rng)
        return to_model_inputs(batch, hidden, network.config.n_games, network.config.n_composers, style_dropout, rng,
                               device)

    def sample(self, batch_size: int) -> dict:
        return self._relabel(self.sampler.sample(batch_size), self.split)

    @torch.no_grad()
    def check_nll(self, network: GridModel, device) -> float:
        """Masked-cell (infiller) or next-frame (draft) NLL on fixed held-out corpus windows."""
        was_training = network.training
        network.eval()
        rng = np.random.default_rng(0)
        loss, _, _ = loss_and_counts(network, self.inputs(network, self.check_batch, rng, device, 0.0))
        network.train(was_training)
        return float(loss)
