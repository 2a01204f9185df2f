"""Checkpoints: a folder with ``model.safetensors`` and ``config.json``. Loading never unpickles.

A composer's model folder (the infiller's checkpoint, ``draft/`` and their companions) is
``nn/folder.py``'s ``ComposerFolder``.

``config.json`` holds everything needed to use the weights (after MidiTok, the
tokenizer's config travels with the model): the model config, the grid vocabulary, the
style list, the corpus manifest hash, training metrics and a version string.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from composer.music import tokens as T
from composer.errors import CheckpointError
from composer.nn.model import GridModel, ModelConfig

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAINING_STATE = "training_state.safetensors"
DEFAULT_MODEL_DIR = Path(__file__).parents[1] / "default_model"  # composer/default_model: package data


def vocabulary() -> dict:
    return {
        "voices": list(T.VOICES),
        "pitch_min": T.PITCH_MIN,
        "pitch_max": T.PITCH_MAX,
        "drum_classes": list(T.DRUM_CLASSES),
        "vocab_sizes": list(T.VOCAB_SIZES),
        "frames_per_quarter": T.FRAMES_PER_QUARTER,
    }


@dataclass
class CheckpointMeta:
    model: ModelConfig
    games: list[str]
    composers: list[str]
    aliases: dict[str, str] = field(default_factory=dict)  # style name -> label ("zelda" -> "dink")
    label_info: dict[str, dict] = field(default_factory=dict)  # label -> pieces, hours, tempo, source...
    manifest_hash: str = ""
    training: dict = field(default_factory=dict)  # command, steps, seconds, metrics, hardware
    version: str = "untrained"

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "mozart.GridModel",
            "version": self.version,
            "model": self.model.to_dict(),
            "vocabulary": vocabulary(),
            "styles": {"games": self.games, "composers": self.composers, "aliases": self.aliases,
                       "labels": self.label_info},
            "corpus": {"manifest_hash": self.manifest_hash},
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, data: dict) -> CheckpointMeta:
        if data.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"Checkpoint format {data.get('format_version')} is not supported "
                                  f"(this Mozart reads format {FORMAT_VERSION}).")
        if data.get("vocabulary") != vocabulary():
            raise CheckpointError("The checkpoint was trained on a different grid vocabulary.")
        styles = data["styles"]
        return cls(model=ModelConfig.from_dict(data["model"]), games=styles["games"], composers=styles["composers"],
                   aliases=styles.get("aliases", {}), label_info=styles.get("labels", {}),
                   manifest_hash=data.get("corpus", {}).get("manifest_hash", ""),
                   training=data.get("training", {}), version=data.get("version", "unknown"))


def save_checkpoint(folder: str | Path, model: GridModel, meta: CheckpointMeta, half: bool = False) -> Path:
    """Write weights and config atomically (temp files, then rename): a crash loses nothing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    _atomic(folder / WEIGHTS, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    _atomic(folder / CONFIG, lambda p: p.write_text(json.dumps(meta.to_dict(), indent=2)))
    return folder


def load_checkpoint(folder: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[GridModel, CheckpointMeta]:
    """Model (in eval mode, float32) and its metadata; the shipped default when ``folder`` is None."""
    folder = Path(folder) if folder else default_checkpoint_path()
    if not (folder / CONFIG).exists() or not (folder / WEIGHTS).exists():
        raise CheckpointError(f"No Mozart checkpoint in {folder} (expected {CONFIG} and {WEIGHTS}).")
    try:
        meta = CheckpointMeta.from_dict(json.loads((folder / CONFIG).read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{folder / CONFIG} is not a config this version of Mozart can read: {e}") from None
    model = GridModel(meta.model)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(folder / WEIGHTS)).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"Weights in {folder} do not match their config: {e}") from None
    return model.to(device).eval(), meta


def default_checkpoint_path() -> Path:
    """$MOZART_CHECKPOINT, else the model shipped inside the package."""
    return Path(os.environ.get("MOZART_CHECKPOINT") or DEFAULT_MODEL_DIR)


def save_training_state(folder: Path, optimizer: torch.optim.Optimizer, progress: dict) -> None:
    """Optimizer moments as safetensors and the loop's progress as JSON (for --resume)."""
    tensors, layout = {}, {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                layout[f"{index}.{name}"] = value
    _atomic(folder / TRAINING_STATE, lambda p: save_file(tensors, str(p)))
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.state_dict()["param_groups"]]
    _atomic(folder / "training_state.json",
            lambda p: p.write_text(json.dumps({"scalars": layout, "param_groups": groups, "progress": progress}, indent=1)))


def load_training_state(folder: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore what ``save_training_state`` wrote; returns the saved progress dict."""
    extra = json.loads((folder / "training_state.json").read_text())
    tensors = load_file(str(folder / TRAINING_STATE))
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(extra["scalars"].items()):
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    for group, saved in zip(current["param_groups"], extra["param_groups"]):
        group.update({k: v for k, v in saved.items()})
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    return extra["progress"]


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
