"""`python -m composer card`: write MODEL_CARD.md from a checkpoint and the encoded corpus.

Every figure in the card is read from the checkpoint's config.json (written by training)
or measured here on the test split, so the card cannot drift from the model it describes.
"""

from __future__ import annotations

from pathlib import Path


from composer.music import tokens as T


def _nll_table(rows: dict[str, dict]) -> list[str]:
    lines = ["| split | " + " | ".join(T.VOICES) + " | all |", "|---|" + "---|" * (T.N_VOICES + 1)]
    for name, result in rows.items():
        per_voice = result["nll_per_voice"]
        lines.append(f"| {name} | " + " | ".join(f"{per_voice[v]:.3f}" for v in T.VOICES) + f" | {result['nll']:.3f} |")
    return lines


def build_card(checkpoint: Path, data_dir: Path, test_windows: int = 2000) -> str:
    from composer.nn.checkpoint import load_checkpoint
    from composer.nn.folder import ComposerFolder
    from composer.corpus.encoded import load_split
    from composer.nn.train import TrainConfig, evaluate

    model, meta = load_checkpoint(checkpoint)
    training = meta.training
    cfg = TrainConfig(**{k: v for k, v in training.get("train_config", {}).items() if k in TrainConfig.__dataclass_fields__})
    n_games, n_composers = meta.model.n_games, meta.model.n_composers
    results = {name: evaluate(model, load_split(data_dir, name), cfg, "cpu", n_games, n_composers,
                              max_windows=test_windows) for name in ("valid", "test")}
    label_rows = ["| label | kind | pieces | hours | typical tempo | source | licence |", "|---|---|---|---|---|---|---|"]
    for label in meta.games + meta.composers:
        info = meta.label_info.get(label, {})
        label_rows.append(f"| {label} | {info.get('kind', '?')} | {info.get('pieces', '?')} | {info.get('hours', 0):.2f} "
                          f"| {info.get('tempo', 0):.0f} | {', '.join(info.get('sources', []))} "
                          f"| {'; '.join(info.get('licences', []))[:80]} |")
    small = [f"{label} {meta.label_info[label]['pieces']}" for label in meta.games + meta.composers
             if meta.label_info.get(label, {}).get("pieces", 99) < 20]
    draft_dir = ComposerFolder(checkpoint).draft
    draft_model, draft_meta = load_checkpoint(draft_dir) if draft_dir.is_dir() else (None, None)
    draft_lines = []
    if draft_meta:
        draft_results = {name: evaluate(draft_model, load_split(data_dir, name), cfg, "cpu", n_games, n_composers,
                                        max_windows=test_windows) for name in ("valid", "test")}
        draft_lines = ["The draft's next-frame negative log-likelihood in nats per cell (every cell scored, "
                       "each frame seeing the frames before it), on the same windows:", "",
                       *_nll_table(draft_results), ""]
    m = meta.model
    networks = [("infiller", meta)] + ([("draft", draft_meta)] if draft_meta else [])
    size_mb = sum((folder / "model.safetensors").stat().st_size for folder in (checkpoint, draft_dir)
                  if (folder / "model.safetensors").exists()) / 1e6
    recipe = training.get("recipe")
    lines = [
        "# Model card: the shipped default model",
        "",
        f"**Version** `{meta.version}` · weights {size_mb:.1f} MB in all (fp16 safetensors) · files in "
        "`composer/default_model/`" + (" (the draft network in `draft/`)" if draft_meta else "") + ".",
        "",
    ]
    if draft_meta:
        d = draft_meta.model
        lines += [
            "Two networks compose together (see `composer/generate/generator.py`):",
            "",
            f"- **draft** `{d.arch}`: {'TimeDistributed dense ×2 → ' if d.arch == 'td_lstm' else ''}"
            f"unidirectional LSTM ×{d.lstm_layers}, hidden {d.hidden}, "
            f"{draft_meta.training.get('parameters', 0) / 1e6:.2f} M parameters. It writes a new piece frame by "
            "frame, each 16th-note frame seeing every frame before it; fixed cells (a returning theme, the "
            "piece an extension continues) are read, not written. For a loop it reads the end and writes the "
            "opening again as its continuation.",
            f"- **infiller** `{m.arch}`: TimeDistributed dense ×2 → BiLSTM ×{m.lstm_layers}, hidden {m.hidden} per "
            f"direction, {training.get('parameters', model.num_parameters()) / 1e6:.2f} M parameters. It sees both "
            "sides: it re-writes the bar before each returning theme (and where a loop's new opening meets the "
            "rest) so it leads into what follows, varies repeats, and does remixes and variations by annealed "
            "block Gibbs sampling.",
            "",
        ]
    else:
        lines += [f"Architecture `{m.arch}` (TimeDistributed dense ×2 → BiLSTM ×{m.lstm_layers}, hidden {m.hidden} "
                  f"per direction), {training.get('parameters', model.num_parameters()) / 1e6:.2f} M parameters; "
                  "generation is annealed block Gibbs sampling (see DESIGN.md).", ""]
    lines += [
        "Both see the five-voice 16th-note grid (lead, counter, harmony, bass, drums), conditioned on a game label "
        "and/or a composer label. Styles: games " + ", ".join(meta.games) + "; composers " + ", ".join(meta.composers)
        + "; aliases " + ", ".join(f"`{a}` → `{b}`" for a, b in meta.aliases.items()) + ".",
        "",
        "## Training",
        "",
    ]
    if recipe:
        total = sum(n.training.get("total_seconds", 0) for _, n in networks)
        lines += [f"Recipe `configs/{recipe['name']}.json`: `python -m composer train --recipe configs/{recipe['name']}.json "
                  f"--out runs/{recipe['name']}`, then `python -m composer card --checkpoint runs/{recipe['name']}/model "
                  f"--ship composer/default_model`. Its stages took {total / 60:.0f} min in all; each resumes "
                  "after an interruption.", ""]
    else:
        lines += [f"Command: `{training.get('command', '?')}` (config `configs/default.json`), then "
                  "`python -m composer card --checkpoint runs/default --ship composer/default_model` to ship it in fp16.", ""]
    for role, net in networks:
        t = net.training
        c = TrainConfig(**{k: v for k, v in t.get("train_config", {}).items() if k in TrainConfig.__dataclass_fields__})
        objective = ("next-frame cross-entropy over every cell" if net.model.causal else
                     "masked-cell cross-entropy (random cell masks at a random rate, whole future hidden, whole "
                     "voices hidden, bar blocks hidden, everything hidden)")
        lines += [
            f"**{role}** (`{net.model.arch}`):",
            "",
            f"- Hardware: {t.get('hardware', '?')} ({t.get('device', '?')}), torch {t.get('torch', '?')}.",
            f"- Wall-clock time: {t.get('total_seconds', 0) / 60:.1f} min; best validation NLL {t.get('val_nll', '?')} "
            f"at step {t.get('best_step', '?')} after {t.get('seconds_to_best', 0) / 60:.1f} min "
            f"(stopped: {t.get('stop_reason', '?')}).",
            f"- Objective: {objective}; windows of {c.window_bars} bars, batch {c.batch_size}, AdamW lr {c.lr} with "
            f"warm-up and cosine decay, gradient clipping {c.grad_clip}, random transposition ±{c.max_transpose} "
            f"semitones, label dropout {c.style_dropout}.",
            "",
        ]
    lines += [f"Corpus manifest hash `{meta.manifest_hash[:16]}…`.", ""]
    curve_lines = []
    for role, net in networks:
        curve = net.training.get("curve", [])
        curve_lines += [f"**{role}** (validation NLL: {'next-frame' if net.model.causal else 'masked cells, rate 0.5'})",
                        "", "| step | minutes | validation NLL |", "|---|---|---|"]
        curve_lines += [f"| {r['step']} | {r['seconds'] / 60:.1f} | {r['val_nll']:.4f} |" for r in curve] + [""]
    lines += [
        "## Data",
        "",
        *label_rows,
        "",
        "## Likelihood",
        "",
        f"The infiller's masked-cell negative log-likelihood in nats per hidden cell, each cell hidden with probability "
        f"{cfg.val_mask_rate}, fixed mask seed, on up to {test_windows} windows of the held-out splits "
        "(split by piece, never by window):",
        "",
        *_nll_table(results),
        "",
        *draft_lines,
        "Drums are near 0 for classical pieces (always silent) and carry the games' grooves otherwise. "
        "Evaluation against baselines and musical statistics is in docs/EVALUATION.md.",
        "",
        "## Learning curves",
        "",
        *curve_lines,
        "## Limits",
        "",
        "- Each network trained for under an hour on a 2-core CPU; a GPU run of the same configs for longer "
        "would lower the NLL.",
        f"- Labels with few pieces ({', '.join(small) or 'none'}) are learnt from little music and are easier to "
        "imitate too closely; every generated piece is checked against the training corpus (originality in bars).",
        "- `zelda` is an alias of Dink Smallwood's soundtrack: no Zelda music is free to train on.",
    ]
    return "\n".join(lines) + "\n"
