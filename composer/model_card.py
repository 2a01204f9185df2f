"""`python -m composer card`: write MODEL_CARD.md from a checkpoint and the encoded corpus.

Every figure in the card is read from the checkpoint's config.json (written by training)
or measured here on the test split, so the card cannot drift from the model it describes.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from composer import tokens as T


def _nll_table(rows: dict[str, dict]) -> list[str]:
    lines = ["| split | " + " | ".join(T.VOICES) + " | all |", "|---|" + "---|" * (T.N_VOICES + 1)]
    for name, result in rows.items():
        per_voice = result["nll_per_voice"]
        lines.append(f"| {name} | " + " | ".join(f"{per_voice[v]:.3f}" for v in T.VOICES) + f" | {result['nll']:.3f} |")
    return lines


def build_card(checkpoint: Path, data_dir: Path, test_windows: int = 2000) -> str:
    from composer.checkpoint import load_checkpoint
    from composer.corpus.encoded import load_split
    from composer.train import TrainConfig, evaluate

    model, meta = load_checkpoint(checkpoint)
    training = meta.training
    cfg = TrainConfig(**{k: v for k, v in training.get("train_config", {}).items() if k in TrainConfig.__dataclass_fields__})
    n_games, n_composers = meta.model.n_games, meta.model.n_composers
    results = {name: evaluate(model, load_split(data_dir, name), cfg, "cpu", n_games, n_composers,
                              max_windows=test_windows) for name in ("valid", "test")}
    size_mb = (checkpoint / "model.safetensors").stat().st_size / 1e6
    label_rows = ["| label | kind | pieces | hours | typical tempo | source | licence |", "|---|---|---|---|---|---|---|"]
    for label in meta.games + meta.composers:
        info = meta.label_info.get(label, {})
        label_rows.append(f"| {label} | {info.get('kind', '?')} | {info.get('pieces', '?')} | {info.get('hours', 0):.2f} "
                          f"| {info.get('tempo', 0):.0f} | {', '.join(info.get('sources', []))} "
                          f"| {'; '.join(info.get('licences', []))[:80]} |")
    curve = training.get("curve", [])
    curve_rows = ["| step | minutes | validation NLL |", "|---|---|---|"] + [
        f"| {r['step']} | {r['seconds'] / 60:.1f} | {r['val_nll']:.4f} |" for r in curve]
    m = meta.model
    lines = [
        "# Model card: the shipped default model",
        "",
        f"**Version** `{meta.version}` · **architecture** `{m.arch}` (TimeDistributed dense ×2 → "
        f"BiLSTM ×{m.lstm_layers}, hidden {m.hidden} per direction, token embedding {m.embed_dim}, "
        f"style embedding {m.style_dim}) · **{training.get('parameters', model.num_parameters()) / 1e6:.2f} M parameters** · "
        f"weights {size_mb:.1f} MB (fp16 safetensors) · files in `composer/default_model/`.",
        "",
        "It fills in hidden cells of the five-voice 16th-note grid (lead, counter, harmony, bass, drums), "
        "conditioned on a game label and/or a composer label; generation is annealed block Gibbs sampling "
        "(see DESIGN.md). Styles: games " + ", ".join(meta.games) + "; composers " + ", ".join(meta.composers)
        + "; aliases " + ", ".join(f"`{a}` → `{b}`" for a, b in meta.aliases.items()) + ".",
        "",
        "## Training",
        "",
        f"- Command: `{training.get('command', '?')}` (config `configs/default.json`), then "
        f"`python -m composer card --checkpoint runs/default --ship composer/default_model` to ship it in fp16.",
        f"- Hardware: {training.get('hardware', '?')} ({training.get('device', '?')}), torch {training.get('torch', '?')}.",
        f"- Wall-clock time: {training.get('total_seconds', 0) / 60:.1f} min in all; best validation at step "
        f"{training.get('best_step', '?')} after {training.get('seconds_to_best', 0) / 60:.1f} min "
        f"(stopped: {training.get('stop_reason', '?')}).",
        f"- Objective: masked-cell cross-entropy (random cell masks at a random rate, whole future hidden, "
        f"whole voices hidden, bar blocks hidden, everything hidden), windows of {cfg.window_bars} bars, batch "
        f"{cfg.batch_size}, AdamW lr {cfg.lr} with warm-up and cosine decay, gradient clipping {cfg.grad_clip}, "
        f"random transposition ±{cfg.max_transpose} semitones, label dropout {cfg.style_dropout}.",
        f"- Corpus manifest hash `{meta.manifest_hash[:16]}…`.",
        "",
        "## Data",
        "",
        *label_rows,
        "",
        "## Likelihood",
        "",
        f"Masked-cell negative log-likelihood in nats per hidden cell, each cell hidden with probability "
        f"{cfg.val_mask_rate}, fixed mask seed, on up to {test_windows} windows of the held-out splits "
        "(split by piece, never by window):",
        "",
        *_nll_table(results),
        "",
        "Drums are near 0 for classical pieces (always silent) and carry the games' grooves otherwise. "
        "Evaluation against baselines and musical statistics is in docs/EVALUATION.md.",
        "",
        "## Learning curve",
        "",
        *curve_rows,
        "",
        "## Limits",
        "",
        "- Trained for under an hour on a 2-core CPU; a GPU run of the same config for longer would lower the NLL.",
        "- Single-track labels (liquidwar, pangzero) cannot be validated and are easy to imitate too closely; "
        "every generated piece is checked against the training corpus (originality in bars).",
        "- `zelda` is an alias of Dink Smallwood's soundtrack: no Zelda music is free to train on.",
    ]
    return "\n".join(lines) + "\n"


@click.command("card")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--data", default="data/encoded", show_default=True, type=click.Path(file_okay=False),
              help="The data root or its encoded/ folder.")
@click.option("--out", default="MODEL_CARD.md", show_default=True)
@click.option("--ship", type=click.Path(file_okay=False), help="Also write an fp16 copy of the checkpoint here.")
def card_command(checkpoint, data, out, ship):
    """Write the model card (and optionally an fp16 copy for shipping)."""
    checkpoint = Path(checkpoint)
    if ship:
        from composer.checkpoint import ORIGINALITY_INDEX, load_checkpoint, save_checkpoint

        model, meta = load_checkpoint(checkpoint)
        save_checkpoint(ship, model, meta, half=True)
        index = checkpoint / ORIGINALITY_INDEX
        if index.exists():
            (Path(ship) / ORIGINALITY_INDEX).write_bytes(index.read_bytes())
        checkpoint = Path(ship)
        click.echo(f"fp16 copy in {ship}: {(checkpoint / 'model.safetensors').stat().st_size / 1e6:.1f} MB")
    Path(out).write_text(build_card(checkpoint, Path(data)))
    click.echo(f"wrote {out}")
    summary = json.loads((checkpoint / "config.json").read_text())["training"]
    click.echo(f"validation NLL at training time: {summary.get('val_nll')}")
