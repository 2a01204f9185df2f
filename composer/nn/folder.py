"""The composer's model folder, its one owner: what it holds, and every way it is read, written, shipped,
extended and fine-tuned.

    model/
      model.safetensors, config.json   the infiller (a checkpoint: nn/checkpoint.py)
      draft/                           the next-frame network that drafts (a checkpoint itself), v2 on
      originality.npz                  lead-line n-grams of the training corpus (nn/originality.py)
      textures.npz                     the training pieces' bar textures plans are drawn from (nn/texture.py)
      intervals.npz                    the intervals lines and chords keep to, calibrated (nn/intervals.py)
      reward.json                      the reward model best_of chooses with (judge/reward.py), when trained
      critic.safetensors, critic.json  the realism critic best_of chooses with too (judge/critic.py), when trained

The infiller and the draft are what training writes; the rest are its *companions*, which travel with the
infiller's weights whenever the folder is assembled (``train --recipe``), shipped (``card --ship``) or
fine-tuned (``finetune``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from composer.errors import CheckpointError
from composer.nn.checkpoint import CONFIG, WEIGHTS, CheckpointMeta, default_checkpoint_path, load_checkpoint, save_checkpoint
from composer.nn.model import GridModel

DRAFT = "draft"  # sub-folder holding the next-frame draft network (a checkpoint itself)
ORIGINALITY_INDEX = "originality.npz"  # lead-line n-gram index of the training corpus
TEXTURES = "textures.npz"  # the training pieces' bar textures that texture plans are drawn from
INTERVALS = "intervals.npz"  # the training pieces' intervals per label and voice, and the networks' own
REWARD = "reward.json"  # the reward model best_of chooses with, when trained
CRITIC_WEIGHTS = "critic.safetensors"  # the realism critic best_of chooses with too, when trained
CRITIC_CONFIG = "critic.json"  # ... its settings and how well it did
# What travels with the infiller's weights when a model folder is assembled, shipped or tuned.
COMPANIONS = (ORIGINALITY_INDEX, REWARD, TEXTURES, INTERVALS, CRITIC_WEIGHTS, CRITIC_CONFIG)


@dataclass(frozen=True)
class ComposerFolder:
    """A model folder on disk (it may not exist yet: ``assemble`` and ``ship`` make one)."""

    path: Path

    @classmethod
    def at(cls, path: str | Path | None = None) -> ComposerFolder:
        """``path``, else $MOZART_CHECKPOINT, else the model shipped inside the package."""
        return cls(Path(path) if path else default_checkpoint_path())

    # -- what it holds ---------------------------------------------------------------------------
    @property
    def draft(self) -> Path:
        return self.path / DRAFT

    @property
    def originality(self) -> Path:
        return self.path / ORIGINALITY_INDEX

    @property
    def textures(self) -> Path:
        return self.path / TEXTURES

    @property
    def intervals(self) -> Path:
        return self.path / INTERVALS

    @property
    def reward(self) -> Path:
        return self.path / REWARD

    @property
    def critic(self) -> Path:
        """The critic's config; its weights are ``critic_weights``, beside it."""
        return self.path / CRITIC_CONFIG

    @property
    def critic_weights(self) -> Path:
        return self.path / CRITIC_WEIGHTS

    def has(self, companion: Path) -> bool:
        return companion.exists()

    def require(self, option: str = "--into") -> ComposerFolder:
        """This folder, or a CheckpointError when it holds no model (``option`` names what pointed here)."""
        if not (self.path / CONFIG).exists():
            raise CheckpointError(f"No Mozart checkpoint in {self.path} (expected {CONFIG}); "
                                  f"{option} names a model folder.")
        return self

    # -- reading ---------------------------------------------------------------------------------
    def networks(self, device: str | torch.device = "cpu") -> tuple[GridModel, CheckpointMeta,
                                                                     GridModel | None, CheckpointMeta | None]:
        """The infiller and its meta, and the draft network and its meta when the folder has one."""
        model, meta = load_checkpoint(self.path, device)
        draft = draft_meta = None
        if self.draft.is_dir():
            draft, draft_meta = load_checkpoint(self.draft, device)
            if not draft_meta.model.causal:
                raise CheckpointError(f"The draft network in {self.draft} must be a next-frame model "
                                      f"(received {draft_meta.model.arch}).")
            if (draft_meta.games, draft_meta.composers) != (meta.games, meta.composers):
                raise CheckpointError(f"The draft network in {self.draft} was trained on other style labels "
                                      "than the infiller beside it.")
        return model, meta, draft, draft_meta

    # -- writing ---------------------------------------------------------------------------------
    def write_networks(self, infiller: tuple[GridModel, CheckpointMeta] | None,
                       draft: tuple[GridModel, CheckpointMeta] | None = None, half: bool = True) -> ComposerFolder:
        """Save the infiller here and the draft in ``draft/`` (fp16 unless ``half`` is False)."""
        if infiller is not None:
            save_checkpoint(self.path, *infiller, half=half)
        if draft is not None:
            save_checkpoint(self.draft, *draft, half=half)
        return self

    def copy_companions(self, target: ComposerFolder) -> list[str]:
        """Copy the ``COMPANIONS`` this folder has into ``target``; returns their names."""
        copied = []
        for name in COMPANIONS:
            if (self.path / name).exists():
                (target.path / name).write_bytes((self.path / name).read_bytes())
                copied.append(name)
        return copied

    def ship(self, target: str | Path) -> ComposerFolder:
        """An fp16 copy of both networks and every companion in ``target`` (``card --ship``)."""
        shipped = ComposerFolder(Path(target))
        shipped.write_networks(load_checkpoint(self.path), load_checkpoint(self.draft) if self.draft.is_dir() else None)
        self.copy_companions(shipped)
        return shipped

    def install_reward(self, source: Path) -> Path:
        """Copy a reward model file in, where best_of finds it (``ratings reward --into``)."""
        self.require()
        shutil.copyfile(source, self.reward)
        return self.reward

    def weights_mb(self) -> float:
        return sum(f.stat().st_size for f in self.path.rglob(WEIGHTS)) / 1e6
