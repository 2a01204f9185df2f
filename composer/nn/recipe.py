"""Recipes: the chain of training stages that makes a composer, each stage resumable.

    python -m composer train --recipe configs/v2.json --out runs/v2

A recipe names its stages; each is a training config like ``train --config`` reads, with
the role its network plays in the composer: the ``infill`` network (the TimeDistributed
BiLSTM) or the ``draft`` network (next-frame). Stage NAME trains in OUT/stages/NAME. Run
the same command again after an interruption: a finished stage is skipped and a stopped
one resumes from its last checkpoint (the wall-clock budget counts across resumes). The
composer is then assembled in fp16 in OUT/model; ``card --checkpoint OUT/model --ship
composer/default_model`` ships it.

Under ``torchrun ... -m composer train --recipe R --out OUT --ddp`` every stage trains with
DistributedDataParallel in one process group; rank 0 decides which stages are left and
assembles the composer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from composer.nn.checkpoint import CONFIG, load_checkpoint
from composer.nn.folder import ComposerFolder
from composer.corpus.encoded import load_meta, manifest_path
from composer.errors import MozartError
from composer.nn.model import ModelConfig
from composer.nn.distributed import process_group
from composer.nn.style_facts import label_info_from_manifest
from composer.nn.train import TrainConfig, train

ROLES = ("infill", "draft")


@dataclass
class Stage:
    name: str
    role: str  # one of ROLES
    train: TrainConfig
    model: ModelConfig


@dataclass
class Recipe:
    name: str
    stages: list[Stage]

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        data = json.loads(Path(path).read_text())
        stages = []
        for entry in data.get("stages", []):
            role = entry.get("role")
            if role not in ROLES:
                raise MozartError(f"Stage {entry.get('name')!r} of {path}: role must be one of "
                                  f"{', '.join(ROLES)} (received {role!r}).")
            model = ModelConfig.from_dict(entry.get("model", {}))
            if model.causal != (role == "draft"):
                raise MozartError(f"Stage {entry['name']!r} of {path}: the {role} network must be "
                                  f"{'a next-frame' if role == 'draft' else 'a bidirectional'} model "
                                  f"(received arch {model.arch!r}).")
            stages.append(Stage(entry["name"], role, TrainConfig.from_dict(entry.get("train", {})), model))
        if sorted(s.role for s in stages) not in (["infill"], ["draft", "infill"]):
            raise MozartError(f"{path} must have one infill stage and at most one draft stage.")
        return cls(data.get("name", Path(path).stem), stages)


def stage_finished(folder: Path) -> bool:
    """Training writes its stop reason into the best checkpoint only when it ends."""
    config = folder / CONFIG
    return config.exists() and "stop_reason" in json.loads(config.read_text()).get("training", {})


def run_recipe(path: str | Path, out: str | Path, data: str | None = None, device: str | None = None,
               quiet: bool = False, command: str = "", ddp: bool = False) -> Path:
    """Train every stage not yet finished, then assemble OUT/model. Returns that folder.

    ``ddp=True``: this process is one rank of a ``torchrun`` job (``train``'s ``ddp``)."""
    recipe = Recipe.load(path)
    out = Path(out)
    with process_group(ddp, device or recipe.stages[0].train.device) as ranks:
        quiet = quiet or not ranks.main
        for stage in recipe.stages:
            folder = out / "stages" / stage.name
            if data:
                stage.train.data = data
            if device:
                stage.train.device = device
            if ranks.share(stage_finished(folder)):
                if not quiet:
                    print(f"stage {stage.name}: finished earlier, skipped")
                continue
            if not quiet:
                print(f"stage {stage.name} ({stage.role}, {stage.model.arch}): training in {folder}")
            train(stage.train, stage.model, folder, resume=True, command=command, quiet=quiet, ddp=ddp)
        return ranks.share(assemble(recipe, out) if ranks.main else None)


def assemble(recipe: Recipe, out: Path) -> Path:
    """The composer folder: the infiller with its companions (originality index, textures), and draft/ (fp16)."""
    model_dir = ComposerFolder(out / "model")
    version = f"{recipe.name}-{time.strftime('%Y%m%d')}"
    for stage in recipe.stages:
        source = out / "stages" / stage.name
        network, meta = load_checkpoint(source)
        meta.version = version
        data = stage.train.data
        if load_meta(data)["manifest_sha256"] == meta.manifest_hash:  # the styles' habits, as this Mozart records them
            meta.label_info = label_info_from_manifest(manifest_path(data))
        meta.training["recipe"] = {"name": recipe.name, "stage": stage.name, "role": stage.role}
        if stage.role == "infill":
            model_dir.write_networks((network, meta))
            ComposerFolder(source).copy_companions(model_dir)
        else:
            model_dir.write_networks(None, (network, meta))
    return model_dir.path
