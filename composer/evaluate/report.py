"""The evaluation report: generate pieces, measure them against real music, write it down.

``evaluate_checkpoint`` runs the stages and returns every figure as a JSON-native dict;
``writer.write_report`` turns it into ``report.md`` (tables, plots as PNG next to it) and
``figures.json``. What is compared with what:

* **real music** (``real``) is cut into excerpts as long as the generated pieces (``bars``
  4/4 bars = ``16 * bars`` frames, bar-aligned in the piece's own meter; pieces at least
  half that long are used whole): held-out *test* excerpts and *train* excerpts;
* **generated** pieces (``plan``): ``n`` pieces with fixed seeds, round-robin over the
  checkpoint's styles (every single label plus a few game-composer blends) and forms.

The figures come from ``sections``, the verdicts from ``targets``.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch
from tqdm import tqdm

from composer.evaluate.plan import EvalConfig, generate_pieces, style_name
from composer.evaluate.real import RealData
from composer.evaluate.sections import (
    likelihood_section,
    originality_section,
    statistics_section,
    structure_section,
    style_section,
    texture_section,
)
from composer.evaluate.splices import composer_windows
from composer.evaluate.targets import judge_targets
from composer.evaluate.writer import write_report
from composer.generate.generator import Generator
from composer.nn.originality import OriginalityIndex

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, cfg: EvalConfig, out: Path | None = None) -> dict:
    """Generate ``cfg.n`` pieces with ``checkpoint``, compute every figure of the report and,
    given ``out``, write the report there."""
    started = time.time()
    timings = {}
    stages = ["load", "generate", "likelihood", "statistics", "texture", "structure", "originality", "style"]
    bar = tqdm(total=len(stages), desc="eval", disable=cfg.quiet, dynamic_ncols=True)

    def stage(name):
        """``name`` just finished: record its time, show the next stage."""
        timings[name] = round(time.time() - stage.t, 1)
        stage.t = time.time()
        bar.update(1)
        following = stages.index(name) + 1
        bar.set_postfix_str(stages[following] if following < len(stages) else "writing")

    stage.t = time.time()
    bar.set_postfix_str(stages[0])
    generator = Generator.load(checkpoint, device=cfg.device, precision=cfg.precision)
    device = generator.device
    real = RealData.load(data)
    frames = cfg.bars * 16
    test_stats = real.excerpts("test", frames, per_piece=cfg.real_per_piece, seed=cfg.seed)
    test_first = real.excerpts("test", frames, first=True)
    test_structure = real.from_first_note("test", cfg.bars)
    train_stats = real.excerpts("train", frames, per_piece=1, max_pieces=cfg.train_excerpts, seed=cfg.seed)
    stage("load")

    generated = generate_pieces(generator, cfg)
    stage("generate")

    fig: dict = {}
    if cfg.likelihood:
        fig["likelihood"] = likelihood_section(generator.model, generator.meta, real, cfg, device, bar,
                                               draft=generator.draft)
    stage("likelihood")
    fig["statistics"] = statistics_section(generated, test_stats, train_stats)
    stage("statistics")
    fig["texture"] = texture_section(generated, real, frames, cfg.seed)
    stage("texture")
    fig["structure"] = structure_section(generated, test_structure)
    stage("structure")
    index = generator.originality or OriginalityIndex.from_encoded(real.folder, ("train",))
    fig["originality"] = originality_section(index, generated, test_first)
    fig["originality"]["index"] = "checkpoint" if generator.originality else "built from the train split"
    stage("originality")
    layouts = [composer_windows(piece, generator.catalog) for piece in generated]
    fig["style"] = style_section(real, generated, test_stats, cfg, layouts)
    stage("style")
    bar.close()

    fig["pieces"] = [
        {"style": style_name(p), "form": p.extra.get("form"), "seed": p.extra.get("seed"), "key": p.key,
         "tempo": p.tempo, "metrics": m, "theme_return": s["theme_return"], "bar_repetition": s["bar_repetition"],
         "copied_bars": o["bars"], "copied_from": o["source"], "style_predicted": sp}
        for p, m, s, o, sp in zip(generated, fig["statistics"]["values"]["generated"], fig["structure"]["generated"],
                                  fig["originality"]["generated"], fig["style"]["generated_predictions"])
    ]
    fig["targets"] = judge_targets(fig)
    meta = generator.meta
    fig["meta"] = {
        "checkpoint": _shown_path(checkpoint), "version": meta.version, "arch": meta.model.arch,
        "draft": None if generator.draft is None else {"arch": generator.draft.config.arch,
                                                       "parameters": generator.draft.num_parameters()},
        "parameters": generator.model.num_parameters(), "training": {k: meta.training.get(k) for k in
                                                                      ("val_nll", "best_step", "seconds_to_best",
                                                                       "total_seconds", "stop_reason", "hardware")},
        "data": str(real.folder), "config": cfg.to_dict(),
        "real_excerpts": {"test_statistics": len(test_stats), "test_first": len(test_first),
                          "test_structure": len(test_structure), "train": len(train_stats)},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {device}",
        "seconds": round(time.time() - started, 1), "stage_seconds": timings,
    }
    if out is not None:
        write_report(fig, Path(out), generated, test_structure)
    return fig


def _shown_path(path) -> str:
    """A path as the report shows it: relative to the working directory when inside it
    (reports get committed; the machine's own folders stay out of them)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name
