"""The five architectures of the original experiment, on the same data and wall-clock budget.

For each architecture: train with the shared config (``configs/default.json``'s ``train``
and ``model`` sections, only ``arch`` changed) for ``minutes`` of wall clock; then run
the whole evaluation on it (likelihood on the test split, plus a smaller set of
generated pieces for the other figures). Writes ``compare.md``, ``compare.json``,
``learning_curves.png`` and every architecture's own report under ``OUT/<arch>/``.

Fair budget: a few timed training steps first measure each architecture's speed, and its
cosine learning-rate schedule is set to end when the budget does (``max_steps``), with
about 15 validations along the way for the learning curve; ``max_minutes`` stops it in
any case, and early stopping is off. ``max_steps`` instead trains each for exactly that many
steps, whatever the machine's load (tests, reproducible runs). The ``lstm`` model's validation NLL is its
next-frame NLL, not the masked-cell NLL of the others: its curve is drawn dashed; the
table's common axis is the continuation NLL on the test split.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from composer.corpus.encoded import load_meta, load_split
from composer.evaluate.formatting import fmt, jsonable, table
from composer.evaluate.plan import EvalConfig
from composer.evaluate.plots import pyplot, save_figure
from composer.evaluate.report import evaluate_checkpoint

__all__ = ["ARCHS", "compare", "plan_training", "run_complete", "read_curve", "plot_learning_curves"]

ARCHS = ("lstm", "bilstm", "td_bilstm", "td_bilstm_attn", "transformer")
VALIDATIONS = 15  # points on each learning curve
PLAN = "compare_plan.json"


def run_complete(run: Path) -> bool:
    """True when ``train`` finished in ``run`` (its config records why it stopped)."""
    try:
        return bool(json.loads((run / "config.json").read_text())["training"].get("stop_reason"))
    except (OSError, ValueError, KeyError):
        return False


def _time_steps(cfg, model_cfg, device, steps: int = 3) -> tuple[float, float]:
    """Seconds per training step and per validation batch (16 windows), measured."""
    import torch

    from composer.nn.data import WindowSampler, make_mask, to_model_inputs
    from composer.nn.model import GridModel, choose_device
    from composer.nn.train import loss_and_counts

    dev = choose_device(device)
    split = load_split(cfg.data, "train")
    model_cfg.n_games, model_cfg.n_composers = len(split.games), len(split.composers)
    model = GridModel(model_cfg).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    sampler = WindowSampler(split, cfg.window_bars * 16, cfg.max_transpose, cfg.label_balance, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    def one_step():
        batch = sampler.sample(cfg.batch_size)
        hidden = None if model_cfg.causal else \
            make_mask(cfg.batch_size, batch["tokens"].shape[1], batch["frames_per_bar"], rng)
        inputs = to_model_inputs(batch, hidden, model_cfg.n_games, model_cfg.n_composers, 0.1, rng, dev)
        loss, _, _ = loss_and_counts(model, inputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    one_step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(steps):
        one_step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    step_s = (time.time() - t0) / steps
    with torch.no_grad():
        batch = sampler.sample(16)
        inputs = to_model_inputs(batch, np.ones(batch["tokens"].shape, bool), model_cfg.n_games,
                                 model_cfg.n_composers, 0.0, rng, dev)
        model.eval()
        t0 = time.time()
        loss_and_counts(model, inputs)
        val_batch_s = time.time() - t0
    return step_s, val_batch_s


def plan_training(arch: str, minutes: float | None, data: str | Path, config_path: str | None, device: str, seed: int,
                  max_steps: int | None = None):
    """TrainConfig and ModelConfig for one architecture under the budget (speed measured): ``minutes`` of
    wall clock, or exactly ``max_steps`` steps when given (then the machine's load changes nothing)."""
    from composer.nn.train import load_config_file

    cfg, model_cfg = load_config_file(config_path)
    cfg.data = str(data)
    cfg.device = device
    cfg.seed = seed + 1234
    model_cfg.arch = arch
    model_cfg.__post_init__()
    step_s, val_batch_s = _time_steps(cfg, model_cfg, device)
    val_s = val_batch_s * math.ceil(cfg.val_max_windows / 16)
    if max_steps is not None:
        cfg.max_steps, cfg.max_minutes = max_steps, None
    else:
        budget = minutes * 60 * 0.97 - VALIDATIONS * val_s
        cfg.max_steps = max(VALIDATIONS * 2, int(budget / step_s))
        cfg.max_minutes = minutes
    cfg.steps_per_epoch = max(1, cfg.max_steps // VALIDATIONS)
    cfg.warmup_steps = min(cfg.warmup_steps, max(1, cfg.max_steps // 10))
    cfg.patience = 10**6  # the budget decides, not early stopping
    return cfg, model_cfg, {"step_seconds": round(step_s, 3), "validation_seconds": round(val_s, 1)}


def read_curve(run: Path) -> list[dict]:
    """The validation records of ``run/metrics.jsonl`` (step, seconds, val_nll...)."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if "validation" in row:
                out.append(row["validation"])
    return out


def plot_learning_curves(curves: dict[str, list[dict]], path: Path, minutes: float | None) -> Path:
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for arch, curve in curves.items():
        if not curve:
            continue
        x = [r["seconds"] / 60 for r in curve]
        y = [r["val_nll"] for r in curve]
        if arch == "lstm":
            ax.plot(x, y, "--", marker=".", label="lstm (next-frame NLL, every cell)")
        else:
            ax.plot(x, y, marker=".", label=f"{arch} (masked-cell NLL, rate 0.5)")
    if minutes is not None:
        ax.axvline(minutes, color="k", linestyle=":", linewidth=1)
    ax.set_xlabel("wall-clock minutes")
    ax.set_ylabel("validation NLL (nats/cell)")
    ax.set_title("Learning curves, same data and budget", fontsize=10)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def compare(archs, minutes: float | None, out: Path, data: str = "data", config_path: str | None = None, n: int = 16,
            resume_existing: bool = False, device: str = "auto", seed: int = 0, max_steps: int | None = None) -> Path:
    """Train (or reuse) and evaluate each architecture; write the comparison. Returns compare.md.

    Each trains for ``minutes`` of wall clock or, with ``max_steps``, for exactly that many steps."""
    from composer.errors import MozartError
    from composer.nn.train import train

    if (minutes is None) == (max_steps is None):
        raise ValueError(f"give a budget in minutes or in max_steps, not both or neither "
                         f"(received minutes={minutes}, max_steps={max_steps})")
    budget = f"--minutes {minutes}" if max_steps is None else f"--max-steps {max_steps}"

    load_meta(data)  # no encoded corpus: say so before training anything
    out.mkdir(parents=True, exist_ok=True)
    results, curves, plans = {}, {}, {}
    for arch in archs:
        run = out / "runs" / arch
        plan_file = run / PLAN
        if run_complete(run) and resume_existing:
            print(f"[{arch}] finished run found in {run}: not training")
        else:
            if run.exists() and not resume_existing:
                raise MozartError(f"{run} exists. Use --resume-existing to reuse or resume it, or another --out.")
            if plan_file.exists():
                from composer.nn.model import ModelConfig
                from composer.nn.train import TrainConfig

                saved = json.loads(plan_file.read_text())
                cfg, model_cfg = TrainConfig.from_dict(saved["train"]), ModelConfig.from_dict(saved["model"])
                print(f"[{arch}] resuming in {run}")
            else:
                cfg, model_cfg, speed = plan_training(arch, minutes, data, config_path, device, seed, max_steps)
                run.mkdir(parents=True, exist_ok=True)
                plan_file.write_text(json.dumps({"train": asdict(cfg), "model": model_cfg.to_dict(), "speed": speed,
                                                 "minutes": minutes, "max_steps": max_steps}, indent=1))
                print(f"[{arch}] {speed['step_seconds']} s/step -> {cfg.max_steps} steps"
                      + (f" in {minutes} min" if max_steps is None else ""))
            train(cfg, model_cfg, run, resume=(run / "last" / "training_state.json").exists(),
                  command=f"python -m composer eval compare {budget} --archs {arch} --out {out}")
        curves[arch] = read_curve(run)
        if plan_file.exists():
            plans[arch] = json.loads(plan_file.read_text()).get("speed")
        report_dir = out / arch
        cached = report_dir / "figures.json"
        if resume_existing and cached.exists() and cached.stat().st_mtime > (run / "config.json").stat().st_mtime:
            results[arch] = json.loads(cached.read_text())
            print(f"[{arch}] evaluation found in {report_dir}")
        else:
            cfg_eval = EvalConfig(n=n, seed=seed, device=device,
                                  command=f"python -m composer eval --checkpoint {run} --n {n} --out {report_dir}")
            results[arch] = jsonable(evaluate_checkpoint(run, data, cfg_eval, report_dir))

    plot_learning_curves(curves, out / "learning_curves.png", minutes)
    summary = {"minutes": minutes, "max_steps": max_steps, "archs": list(archs), "speed": plans, "curves": curves,
               "figures": {a: _row(r, curves.get(a, [])) for a, r in results.items()}}
    (out / "compare.json").write_text(json.dumps(jsonable(summary), indent=1, allow_nan=False))
    md = _markdown(summary, results)
    (out / "compare.md").write_text(md)
    return out / "compare.md"


def _get(d, *keys):
    for k in keys:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _row(fig: dict, curve: list[dict]) -> dict:
    models = _get(fig, "likelihood", "models") or {}
    return {
        "parameters": _get(fig, "meta", "parameters"),
        "steps": curve[-1]["step"] if curve else None,
        "minutes": curve[-1]["seconds"] / 60 if curve else None,
        "best_val_nll": min((r["val_nll"] for r in curve), default=None),
        "test_continuation_nll": _get(models, "model", "continuation", "nll"),
        "test_masked_nll_0.5": _get(models, "model", "masked", "0.5", "nll"),
        "ngram_continuation_nll": _get(models, "ngram", "continuation", "nll"),
        "statistics_overlap": _get(fig, "statistics", "mean_overlap_generated_test"),
        "statistics_overlap_real": _get(fig, "statistics", "mean_overlap_test_train"),
        "theme_return_aaba": _get(fig, "structure", "generated_by_form", "AABA", "theme_return", "median"),
        "theme_return_through": _get(fig, "structure", "generated_by_form", "through", "theme_return", "median"),
        "copy_share": _get(fig, "originality", "generated_share"),
        "bach_accuracy": _get(fig, "style", "bach_accuracy"),
        "game_accuracy": _get(fig, "style", "game_accuracy"),
        "real_vs_generated": _get(fig, "style", "real_vs_generated", "balanced_accuracy"),
    }


def _markdown(summary: dict, results: dict) -> str:
    budget = f"{summary['minutes']:g} wall-clock minutes" if summary.get("max_steps") is None \
        else f"{summary['max_steps']} steps"
    rows = []
    for arch, r in summary["figures"].items():
        rows.append([f"[{arch}]({arch}/report.md)", f"{r['parameters']:,}" if r["parameters"] else "n/a",
                     r["steps"] or "n/a", fmt(r["minutes"], 1),
                     fmt(r["best_val_nll"]) + (" (next-frame)" if arch == "lstm" else ""),
                     fmt(r["test_continuation_nll"]), fmt(r["test_masked_nll_0.5"]),
                     fmt(r["statistics_overlap"], 2), fmt(r["theme_return_aaba"], 2),
                     fmt(r["theme_return_through"], 2), fmt(r["copy_share"], pct=True),
                     fmt(r["bach_accuracy"], pct=True), fmt(r["game_accuracy"], pct=True),
                     fmt(r["real_vs_generated"], pct=True)])
    ngram = next((r["ngram_continuation_nll"] for r in summary["figures"].values() if r["ngram_continuation_nll"]), None)
    real_overlap = next((r["statistics_overlap_real"] for r in summary["figures"].values()
                         if r["statistics_overlap_real"] is not None), None)
    header = ["arch", "params", "steps", "minutes", "best valid NLL", "test continuation NLL", "test masked NLL (0.5)",
              "stats overlap", "theme return AABA", "theme return through", "copies >= 2 bars", "bach acc.",
              "game acc.", "real-vs-gen acc."]
    lines = ["# The five architectures, same data, same budget", "",
             f"Each trained for {budget} on this machine with the same config "
             "(only `arch` changes), then evaluated like the shipped model (pieces per architecture: see each report).",
             "",
             table(header, rows), "",
             f"n-gram baseline continuation NLL on the same test positions: {fmt(ngram)}; held-out real music's "
             f"statistics overlap with the training set: {fmt(real_overlap, 2)}. NLL in nats per cell, lower is "
             "better; `lstm` cannot score masked cells.", "",
             "![learning curves](learning_curves.png)", "",
             "Validation NLL against wall-clock time. The bidirectional models' curve is masked-cell NLL (rate 0.5); "
             "the `lstm` curve (dashed) is next-frame NLL over every cell, a different quantity: compare them on "
             "the test continuation NLL in the table.", ""]
    speed = summary.get("speed") or {}
    if speed:
        lines += ["Measured speed: " + "; ".join(f"{a} {s['step_seconds']} s/step" for a, s in speed.items() if s) + ".", ""]
    return "\n".join(lines) + "\n"
