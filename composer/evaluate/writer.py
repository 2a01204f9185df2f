"""Writing the report down: ``figures.json``, the pictures and ``report.md``."""

from __future__ import annotations

import json
from pathlib import Path

from composer.music import tokens as T
from composer.evaluate.formatting import fmt, jsonable, table
from composer.analysis.metrics import METRIC_LABELS
from composer.evaluate.plan import style_name
from composer.evaluate.plots import plot_likelihood, plot_originality, plot_rolls, plot_self_similarity, plot_statistics
from composer.evaluate.real import label_of
from composer.evaluate.splices import SPLICES_PER_PIECE
from composer.evaluate.targets import STATUSES, TARGETS
from composer.music.grid import Piece

__all__ = ["STATUS_MARKS", "write_report", "render_markdown"]

STATUS_MARKS = dict(zip(STATUSES, ("**met**", "**MISSED**", "not measured")))  # in the Targets table


def _spliced(spliced: dict) -> str:
    """A blend's real-splice reference, with how many held-out pieces of each parent it drew on."""
    pieces = ", ".join(f"{label} {n}" for label, n in spliced["real_pieces"].items())
    return f"{fmt(spliced['share'], pct=True)} (held-out pieces: {pieces})"


def write_report(fig: dict, out: Path, generated: list[Piece] | None = None, real_first: list[Piece] | None = None,
                 title: str = "Mozart evaluation") -> Path:
    """Write ``report.md``, ``figures.json`` and the PNGs into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps(jsonable(fig), indent=1, allow_nan=False))
    images = {"statistics": plot_statistics(fig["statistics"], out / "statistics.png").name,
              "originality": plot_originality(fig["originality"], out / "originality.png").name}
    if fig.get("likelihood"):
        images["likelihood"] = plot_likelihood(fig["likelihood"], out / "likelihood.png").name
    if generated:
        shown, titles, seen = [], [], set()
        for p in generated:
            form = p.extra.get("form")
            if form not in seen:
                seen.add(form)
                shown.append(p)
                titles.append(f"generated {style_name(p)} ({form})")
        for p in (real_first or [])[:40]:
            kind = "game" if p.game else "classical"
            if kind not in seen:
                seen.add(kind)
                shown.append(p)
                titles.append(f"real {label_of(p)} ({p.source.split(':', 1)[-1]})")
        images["structure"] = plot_self_similarity(shown, titles, out / "self_similarity.png").name
        rolls = plot_rolls(generated, real_first or [], out / "rolls.png")
        if rolls:
            images["rolls"] = rolls.name
    md = render_markdown(fig, images, title)
    (out / "report.md").write_text(md)
    return out / "report.md"


def render_markdown(fig: dict, images: dict, title: str = "Mozart evaluation") -> str:
    meta = fig["meta"]
    cfg = meta["config"]
    lines = [f"# {title}", "",
             f"Checkpoint `{meta['checkpoint']}` (version {meta['version']}, arch `{meta['arch']}`, "
             f"{meta['parameters']:,} parameters"
             + (f"; draft `{meta['draft']['arch']}`, {meta['draft']['parameters']:,} parameters" if meta.get("draft") else "")
             + f"), data `{meta['data']}`; {cfg['n']} generated pieces of "
             f"{cfg['bars']} bars (seeds {cfg['seed']}..{cfg['seed'] + cfg['n'] - 1}, {cfg['steps']} Gibbs passes, "
             f"temperature {cfg['temperature']}, top-p {cfg['top_p']}). {meta['date']}, {meta['machine']}; "
             f"took {meta['seconds'] / 60:.1f} min."
             + (f" Command: `{cfg['command']}`." if cfg.get("command") else ""), ""]
    lines += ["## Targets", ""]
    rows = []
    for key, t in fig["targets"].items():
        close = t["close"] if t["status"] != "met" else ""
        rows.append([TARGETS[key].title, STATUS_MARKS[t["status"]], t["detail"], close])
    lines += [table(["target", "status", "figures", "what would close it"], rows), ""]

    lk = fig.get("likelihood")
    if lk:
        lines += ["## 1. Likelihood (held-out test split, nats per cell)", "",
                  f"Masked-cell NLL: {lk['windows']} test windows of 256 frames, the same random masks for every "
                  f"model. Continuation NLL: p(frame t | frames < t) at {lk['positions']} random test frames, "
                  "the whole future hidden (bidirectional models see MASK from t on; the causal LSTM its usual "
                  "past). The n-gram scores a hidden cell from the observed cells just before it in its voice "
                  "(it never sees the future or the other voices); the causal LSTM has no masked-cell NLL.", ""]
        rates = lk["mask_rates"]
        header = ["model", "arch"] + [f"masked {r:g}" for r in rates] + ["continuation", "continuation / frame"]
        rows = []
        for name, res in lk["models"].items():
            rows.append([name, res["arch"]] + [fmt(res["masked"][str(r)]["nll"]) for r in rates]
                        + [fmt(res["continuation"]["nll"]), fmt(res["continuation"]["frame_nll"])])
        lines += [table(header, rows), ""]
        header = ["model", "figure"] + list(T.VOICES)
        rows = []
        for name, res in lk["models"].items():
            mid = "0.5" if "0.5" in res["masked"] else str(rates[0])
            rows.append([name, f"masked {mid}"] + [fmt(res["masked"][mid]["per_voice"][v]) for v in T.VOICES])
            rows.append([name, "continuation"] + [fmt(res["continuation"]["per_voice"][v]) for v in T.VOICES])
        lines += ["Per voice:", "", table(header, rows), ""]
        ng = lk["models"]["ngram"]
        lines += [f"The n-gram counts the train split in all 12 keys (the models train on transposed windows too); "
                  f"its order ({ng['order']}) was chosen on the valid split: "
                  + ", ".join(f"{k}-gram {fmt(v)}" for k, v in ng["valid_continuation_nll_by_order"].items()) + ".", ""]
        if "lstm" not in lk["models"]:
            lines += ["The original's approach (a unidirectional next-frame LSTM) is not in this table: pass "
                      "`--baseline-lstm RUN` (e.g. the `lstm` run of `python -m composer eval compare`).", ""]
        lines += [f"![likelihood]({images['likelihood']})", ""]

    st = fig["statistics"]
    lines += ["## 2. Musical statistics", "",
              f"Generated pieces vs held-out real excerpts (test, {st['n']['test']}) and training excerpts "
              f"({st['n']['train']}), all {cfg['bars']} 4/4-bar long (real excerpts bar-aligned in their own meter). "
              "OA = overlapping area of the two kernel density estimates (MGEval, Yang & Lerch 2018). The real "
              "excerpts are weighted to the generated pieces' style mix (a blend counts half to each label; "
              f"the test split covers {fmt(st['mix_covered_by_test'], pct=True)} of that mix), so the overlap "
              "measures the music, not the corpus' proportions; unweighted: generated-test "
              f"{fmt(st['mean_overlap_generated_test_unweighted'])}, test-train "
              f"{fmt(st['mean_overlap_test_train_unweighted'])}.", ""]
    rows = []
    for m, v in st["metrics"].items():
        rows.append([METRIC_LABELS[m], f"{fmt(v['generated']['mean'], 2)} ± {fmt(v['generated']['std'], 2)}",
                     f"{fmt(v['test']['mean'], 2)} ± {fmt(v['test']['std'], 2)}",
                     f"{fmt(v['train']['mean'], 2)} ± {fmt(v['train']['std'], 2)}",
                     fmt(v["overlap_generated_test"], 2), fmt(v["overlap_test_train"], 2)])
    rows.append(["**mean overlap**", "", "", "", f"**{fmt(st['mean_overlap_generated_test'], 3)}**",
                 f"**{fmt(st['mean_overlap_test_train'], 3)}**"])
    lines += [table(["metric", "generated", "test", "train", "OA gen-test", "OA test-train"], rows), "",
              f"![statistics]({images['statistics']})", "", "Per style (generated mean vs real mean of that label):", ""]
    key_metrics = ["pitch_class_entropy", "scale_consistency", "note_density", "drum_density", "polyphony"]
    rows = []
    for style, v in st["per_style"].items():
        cells = []
        for m in key_metrics:
            real_mean = v["real_mean"][m] if v["real_mean"] else None
            cells.append(f"{fmt(v['generated_mean'][m], 2)} / {fmt(real_mean, 2)}")
        rows.append([style, v["n_generated"], v["n_real"]] + cells + [fmt(v["overlap_mean"], 2)])
    lines += [table(["style", "gen", "real"] + [METRIC_LABELS[m] for m in key_metrics] + ["mean OA"], rows), ""]
    if fig.get("texture"):
        lines += texture_lines(fig["texture"])

    sc = fig["structure"]
    lines += ["## 3. Structure", "",
              "Theme return: the best share of the first 4 lead bars' cells found again in a later bar-aligned "
              "4-bar window, exactly or transposed (−12..12). Bar repetition: each bar's best match with another "
              f"bar (self-similarity), averaged. Real pieces: the first {cfg['bars']} bars (in their own meter) of "
              "every test piece, from the bar of the lead's first note.", ""]
    rows = []
    for form, v in sc["generated_by_form"].items():
        t = v["theme_return"]
        rows.append([f"generated {form}", t["n"], fmt(t["median"]), f"{fmt(t['p10'])}–{fmt(t['p90'])}",
                     fmt(v["bar_repetition"]["median"])])
    t = sc["real"]["theme_return"]
    rows.append(["real (test)", t["n"], fmt(t["median"]), f"{fmt(t['p10'])}–{fmt(t['p90'])}",
                 fmt(sc["real"]["bar_repetition"]["median"])])
    for kind, v in sc["real_by_kind"].items():
        t = v["theme_return"]
        rows.append([f"real {kind}", t["n"], fmt(t["median"]), f"{fmt(t['p10'])}–{fmt(t['p90'])}",
                     fmt(v["bar_repetition"]["median"])])
    lines += [table(["pieces", "n", "theme return (median)", "10–90 %", "bar repetition (median)"], rows), ""]
    if "structure" in images:
        lines += [f"![self-similarity]({images['structure']})", ""]
    if "rolls" in images:
        lines += ["Piano rolls, generated beside held-out real music of the same label (first 8 bars of each; "
                  "lead red, counter blue, harmony green, bass purple):", "", f"![piano rolls]({images['rolls']})", ""]

    og = fig["originality"]
    lines += ["## 4. Originality", "",
              f"Longest lead-line span (transposition-invariant intervals + onsets) shared with any training "
              f"piece (index: {og['index']}).", "",
              table(["pieces", "share with >= 2 bars copied", "median bars", "max bars"],
                     [["generated", fmt(og["generated_share"], pct=True), fmt(og["generated_bars"]["median"], 2),
                       fmt(og["generated_bars"]["max"], 2)],
                      ["held-out real (test)", fmt(og["test_share"], pct=True), fmt(og["test_bars"]["median"], 2),
                       fmt(og["test_bars"]["max"], 2)]]), "",
              f"![originality]({images['originality']})", ""]
    longest = sorted(fig["pieces"], key=lambda p: -(p["copied_bars"] or 0))[:5]
    lines += ["Longest copies among the generated pieces: " + "; ".join(
        f"{p['style']} #{p['seed']} {fmt(p['copied_bars'], 2)} bars from `{p['copied_from']}`" for p in longest
        if p["copied_bars"]) + ".", ""] if any(p["copied_bars"] for p in longest) else []

    sy = fig["style"]
    rt = sy["real_test"]
    whole = rt["whole_pieces"]
    lines += ["## 5. Style fidelity", "",
              f"A classifier (MLP on {len(sy['classes'])} labels) trained on real music only ({rt['train_windows']} "
              f"windows of {sy['window_frames']} frames from the train split) labels held-out real excerpts as long as "
              f"the generated pieces correctly {fmt(rt['piece_accuracy'], pct=True)} of the time ({rt['pieces']} "
              f"excerpts; balanced over labels {fmt(rt['piece_balanced_accuracy'], pct=True)}; per window "
              f"{fmt(rt['window_accuracy'], pct=True)}), whole held-out pieces {fmt(whole['piece_accuracy'], pct=True)}. "
              "Per held-out label: " + ", ".join(f"{k} {fmt(v, pct=True)}" for k, v in
                                                  rt["per_label_piece_accuracy"].items()) + ". On generated pieces:", ""]
    rows = []
    for style, v in sy["generated_per_style"].items():
        top = ", ".join(f"{k} {c}" for k, c in sorted(v["predicted"].items(), key=lambda kv: -kv[1])[:3])
        spliced = v.get("real_splices")
        rows.append([style, v["n"], fmt(v["game_share"], pct=True) if v["game"] else "–",
                     fmt(v["composer_share"], pct=True) if v["composer"] else "–",
                     _spliced(spliced) if spliced else "–", top])
    lines += [table(["style", "pieces", "classified as its game", "as its composer",
                     "real music spliced alike, as a parent", "predictions"], rows), "",
              "For a blend, a reference: how often real music of its two parents is heard as one of them when "
              "each generated piece's sections are filled with held-out real music of its game and its composer, "
              f"window for window, {SPLICES_PER_PIECE} times (`composer/evaluate/splices.py`).", "",
              f"Pooled: bach {fmt(sy['bach_accuracy'], pct=True)} (n={sy['bach_pieces']}), game styles "
              f"{fmt(sy['game_accuracy'], pct=True)} (n={sy['game_pieces']}), composer styles "
              f"{fmt(sy['composer_accuracy'], pct=True)} (n={sy['composer_pieces']}).", ""]
    rvg = sy["real_vs_generated"]
    lines += [f"Real vs generated: a classifier trained to tell held-out real windows ({rvg['n_real']}, from the "
              f"valid and test splits, in the generated pieces' style mix) from generated ones "
              f"({rvg['n_generated']}), {rvg['folds']}-fold cross-validated by piece, reaches a balanced accuracy of "
              f"{fmt(rvg['balanced_accuracy'], pct=True)} (50 % = cannot tell them apart)."]
    if sy.get("real_vs_training_music"):
        lines += [f"The same classifier against excerpts of the training music in the same mix (what a model that "
                  f"wrote its training music back would score): "
                  f"{fmt(sy['real_vs_training_music']['balanced_accuracy'], pct=True)}."]
    if sy.get("real_vs_generated_by_excerpt"):
        lines += [f"Grouped by excerpt instead of by real piece, as reports before 2026-12-06 were (a label's few "
                  f"held-out pieces then sit in every fold and are learnt): "
                  f"{fmt(sy['real_vs_generated_by_excerpt']['balanced_accuracy'], pct=True)}."]
    if sy.get("real_vs_generated_unmatched"):
        lines += [f"Against every test excerpt regardless of style (mostly monophonic folk tunes, so it partly "
                  f"tells styles apart): {fmt(sy['real_vs_generated_unmatched']['balanced_accuracy'], pct=True)}."]
    lines += [""]
    lines += ["## Timing", "", ", ".join(f"{k} {v:.0f} s" for k, v in meta["stage_seconds"].items()) + ".", "",
              "Every number is in `figures.json`."]
    return "\n".join(lines) + "\n"


def texture_lines(tx: dict) -> list[str]:
    """The texture table: per style, each figure's generated median beside the real 10-90 % range."""
    names = list(next((row["figures"] for row in tx["styles"].values()), {}))
    lo, hi = tx["real_range"]
    lines = ["### Texture per style", "",
             f"Generated median, then the real {lo}-{hi} % range of that label (one excerpt of every real piece, "
             f"all splits; styles with at least {tx['min_real_pieces']} real pieces); **bold** when outside it. "
             f"Upper line: share of pieces with a voice above the bass in >= {tx['upper_bars']:.0%} of their bars "
             f"(generated / real). Drum groove: 1 minus the share of drum cells that change from bar to bar.", ""]
    rows = []
    for style, row in tx["styles"].items():
        cells = []
        for name in names:
            f = row["figures"][name]
            text = fmt(f["generated_median"], 2)
            if "real_low" in f:
                text = (text if f["inside"] else f"**{text}**") + f" ({fmt(f['real_low'], 2)}-{fmt(f['real_high'], 2)})"
            cells.append(text)
        real_ok = row.get("real_upper_line_ok")
        cells.append(f"{row['upper_line_ok']:.0%}" + (f" / {real_ok:.0%}" if real_ok is not None else ""))
        rows.append([style, row["n_generated"], row["n_real"]] + cells)
    labels = [METRIC_LABELS.get(n, n.replace("_", " ")) for n in names] + ["upper line"]
    lines += [table(["style", "gen", "real"] + labels, rows), "",
              f"All styles: {tx['upper_line_ok']:.1%} of {tx['n']} pieces have a line above the bass"
              + (f"; pieces of 8 bars or fewer: {tx['short_upper_line_ok']:.1%}" if tx["short_upper_line_ok"] == tx["short_upper_line_ok"] else "")
              + ".", ""]
    return lines
