"""The report's sections: each measures the generated pieces against real music and
returns its figures as a dict (``evaluate_checkpoint`` puts them together).

* ``likelihood_section`` — masked-cell and continuation NLL on the test split, for the model,
  the n-gram baseline and (optionally) the unidirectional LSTM;
* ``statistics_section`` — every musical metric, generated vs held-out vs train, and the
  MGEval overlaps, the real sets weighted to the generated style mix;
* ``structure_section`` — theme return and bar repetition per form, and of real pieces;
* ``originality_section`` — the longest span shared with a training piece;
* ``style_section`` — the style classifier and the real-vs-generated classifier.
"""

from __future__ import annotations

import math
import time

import numpy as np

from composer.analysis.metrics import (
    METRICS,
    drum_groove,
    empty_beat_rate,
    mgeval_overlap,
    note_density,
    piece_metrics,
    pitch_range,
    polyphony,
    rest_rate,
    upper_line_share,
)
from composer.analysis.structure import bar_repetition, theme_return_detail
from composer.evaluate import likelihood as L
from composer.evaluate.plan import EvalConfig, style_name
from composer.evaluate.real import RealData, label_of
from composer.evaluate.splices import real_splices
from composer.evaluate.style import WINDOW, piece_predictions, real_vs_generated, train_classifier, window_features
from composer.evaluate.targets import COPY_BARS
from composer.music.grid import Piece
from composer.nn.originality import OriginalityIndex

__all__ = ["summary", "likelihood_section", "style_mix", "mix_weights", "statistics_section", "structure_section",
           "originality_section", "style_section"]


def summary(values) -> dict:
    """n, mean, std, median, p10, p90, min and max of the finite values (NaN when there are none)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    if len(x) == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "median": math.nan, "p10": math.nan, "p90": math.nan,
                "min": math.nan, "max": math.nan}
    return {"n": int(len(x)), "mean": float(x.mean()), "std": float(x.std()), "median": float(np.median(x)),
            "p10": float(np.percentile(x, 10)), "p90": float(np.percentile(x, 90)),
            "min": float(x.min()), "max": float(x.max())}


def likelihood_section(model, meta, real: RealData, cfg: EvalConfig, device, bar=None, draft=None) -> dict:
    """Masked-cell and continuation NLL on test for the model (and a v2 composer's draft
    network), the n-gram and (optionally) the LSTM."""
    test = real.splits["test"]
    windows = L.masked_windows(test, max_windows=cfg.masked_windows, seed=cfg.seed)
    cset = L.continuation_set(test, cfg.continuation_positions, seed=cfg.seed)
    out = {"windows": len(windows), "positions": len(cset), "mask_rates": list(cfg.mask_rates), "models": {}}

    def neural(name, m, games, composers):
        started = time.time()
        out["models"][name] = {
            "arch": m.config.arch,
            "masked": L.model_masked_nll(m, windows, L.label_map(real.games, games), L.label_map(real.composers, composers),
                                         cfg.mask_rates, cfg.seed, device=device),
            "continuation": L.model_continuation_nll(m, cset, L.label_map(real.games, games),
                                                     L.label_map(real.composers, composers), device=device),
            "seconds": round(time.time() - started, 1),
        }

    neural("model", model, meta.games, meta.composers)
    if draft is not None:
        neural("draft", draft, meta.games, meta.composers)
    if bar:
        bar.set_postfix_str("n-gram")
    started = time.time()
    ngram, by_order = L.ngram_select_order(real.splits["train"], real.splits["valid"], cfg.ngram_orders, seed=cfg.seed,
                                           shifts=cfg.ngram_shifts)
    out["models"]["ngram"] = {
        "arch": f"{ngram.order}-gram",
        "order": ngram.order,
        "valid_continuation_nll_by_order": {str(k): v for k, v in by_order.items()},
        "masked": L.ngram_masked_nll(ngram, windows, cfg.mask_rates, cfg.seed),
        "continuation": L.ngram_continuation_nll(ngram, cset),
        "seconds": round(time.time() - started, 1),
    }
    if cfg.baseline_lstm:
        from composer.nn.checkpoint import load_checkpoint

        if bar:
            bar.set_postfix_str("lstm baseline")
        lstm, lstm_meta = load_checkpoint(cfg.baseline_lstm, device)
        neural("lstm", lstm, lstm_meta.games, lstm_meta.composers)
        out["models"]["lstm"]["checkpoint"] = str(cfg.baseline_lstm)
    return out


def style_mix(generated: list[Piece]) -> dict[str, float]:
    """Share of each label in the generated set (a blend counts half to each of its labels)."""
    mix: dict[str, float] = {}
    for piece in generated:
        for label in piece.labels:
            mix[label] = mix.get(label, 0.0) + 1.0 / len(piece.labels)
    total = sum(mix.values()) or 1.0
    return {k: v / total for k, v in mix.items()}


def mix_weights(pieces: list[Piece], mix: dict[str, float]) -> np.ndarray:
    """Weights that give real ``pieces`` the label mix ``mix`` (labels outside it weigh 0)."""
    labels = [label_of(p) for p in pieces]
    counts = {label: labels.count(label) for label in set(labels)}
    return np.array([mix.get(label, 0.0) / counts[label] for label in labels])


def statistics_section(generated: list[Piece], test: list[Piece], train: list[Piece]) -> dict:
    """Every metric for the three sets, and their overlaps. The real sets are weighted to the
    generated pieces' style mix (so that, say, 300 Bach chorales do not stand in for Doom);
    the unweighted overlaps are kept too."""
    values = {"generated": [piece_metrics(p) for p in generated], "test": [piece_metrics(p) for p in test],
              "train": [piece_metrics(p) for p in train]}
    mix = style_mix(generated)
    w_test, w_train = mix_weights(test, mix), mix_weights(train, mix)
    per_metric = {}
    for m in METRICS:
        g, te, tr = ([row[m] for row in values[k]] for k in ("generated", "test", "train"))
        per_metric[m] = {
            "generated": summary(g), "test": summary(te), "train": summary(tr),
            "overlap_generated_test": mgeval_overlap(g, te, wb=w_test),
            "overlap_generated_train": mgeval_overlap(g, tr, wb=w_train),
            "overlap_test_train": mgeval_overlap(te, tr, w_test, w_train),
            "overlap_generated_test_unweighted": mgeval_overlap(g, te),
            "overlap_test_train_unweighted": mgeval_overlap(te, tr),
        }

    def mean_of(key):
        xs = [v[key] for v in per_metric.values() if v[key] is not None and np.isfinite(v[key])]
        return float(np.mean(xs)) if xs else math.nan

    # per style: generated single-label styles vs real excerpts (test + train) of that label
    per_style = {}
    real_by_label: dict[str, list[dict]] = {}
    for piece, row in zip(test + train, values["test"] + values["train"]):
        real_by_label.setdefault(label_of(piece), []).append(row)
    by_style: dict[str, list[dict]] = {}
    for piece, row in zip(generated, values["generated"]):
        by_style.setdefault(style_name(piece), []).append(row)
    for style, rows in by_style.items():
        label = style if style in real_by_label else None
        reals = real_by_label.get(label, []) if label else []
        per_style[style] = {
            "n_generated": len(rows), "n_real": len(reals),
            "generated_mean": {m: summary([r[m] for r in rows])["mean"] for m in METRICS},
            "real_mean": {m: summary([r[m] for r in reals])["mean"] for m in METRICS} if reals else None,
            "overlap_mean": float(np.nanmean([mgeval_overlap([r[m] for r in rows], [r[m] for r in reals])
                                              for m in METRICS])) if len(reals) >= 2 and len(rows) >= 2 else math.nan,
        }
    test_labels = {label_of(p) for p in test}
    return {"metrics": per_metric, "per_style": per_style, "style_mix": mix,
            "mix_covered_by_test": float(sum(v for k, v in mix.items() if k in test_labels)),
            "weights": {"test": w_test.tolist(), "train": w_train.tolist()},
            "mean_overlap_generated_test": mean_of("overlap_generated_test"),
            "mean_overlap_generated_test_unweighted": mean_of("overlap_generated_test_unweighted"),
            "mean_overlap_test_train_unweighted": mean_of("overlap_test_train_unweighted"),
            "mean_overlap_generated_train": mean_of("overlap_generated_train"),
            "mean_overlap_test_train": mean_of("overlap_test_train"),
            "n": {k: len(v) for k, v in values.items()},
            "values": values}


TEXTURE_FIGURES = {  # figure -> how it is measured on a piece
    "polyphony": polyphony,
    "rest_rate": rest_rate,
    "empty_beat_rate": empty_beat_rate,
    "pitch_range": pitch_range,
    "note_density": note_density,
}
MIN_REAL_PIECES = 10  # a style's real range needs at least this many real pieces
UPPER_BARS = 0.75  # "a line above the bass": in at least this share of a piece's bars
REAL_RANGE = (10, 90)  # percentiles


def texture_section(generated: list[Piece], real: RealData, frames: int, seed: int = 0) -> dict:
    """Per single-label style with ``MIN_REAL_PIECES`` real pieces: the generated median of
    each texture figure beside the real 10-90 % range of that label (one excerpt as long as
    the generated pieces from every real piece, all splits); the share of pieces with a line
    above the bass in ``UPPER_BARS`` of their bars; and the drums' bar-to-bar groove."""
    real_by_label: dict[str, list[Piece]] = {}
    for split in real.splits:
        for piece in real.excerpts(split, frames, per_piece=1, seed=seed):
            real_by_label.setdefault(label_of(piece), []).append(piece)
    generated_by_style: dict[str, list[Piece]] = {}
    for piece in generated:
        generated_by_style.setdefault(style_name(piece), []).append(piece)

    def figures(pieces: list[Piece]) -> dict[str, np.ndarray]:
        out = {name: np.array([fn(p) for p in pieces], float) for name, fn in TEXTURE_FIGURES.items()}
        out["upper_line_share"] = np.array([upper_line_share(p) for p in pieces], float)
        out["drum_groove"] = np.array([drum_groove(p) for p in pieces], float)
        return out

    def ok(values: np.ndarray) -> float:
        return float(np.mean(values >= UPPER_BARS)) if len(values) else math.nan

    styles = {}
    for style, pieces in generated_by_style.items():
        made = figures(pieces)
        reals = real_by_label.get(style, [])
        row = {"n_generated": len(pieces), "n_real": len(reals), "upper_line_ok": ok(made["upper_line_share"]),
               "figures": {}}
        known = figures(reals) if len(reals) >= MIN_REAL_PIECES else None
        if known is not None:
            row["real_upper_line_ok"] = ok(known["upper_line_share"])
        for name in list(TEXTURE_FIGURES) + ["drum_groove"]:
            mine = made[name][np.isfinite(made[name])]
            entry = {"generated_median": float(np.median(mine)) if len(mine) else math.nan}
            if known is not None:
                theirs = known[name][np.isfinite(known[name])]
                if len(theirs) >= MIN_REAL_PIECES:
                    lo, mid, hi = np.percentile(theirs, (REAL_RANGE[0], 50, REAL_RANGE[1]))
                    entry.update(real_low=float(lo), real_median=float(mid), real_high=float(hi),
                                 inside=bool(len(mine)) and bool(lo <= entry["generated_median"] <= hi))
            row["figures"][name] = entry
        styles[style] = row
    shares = np.concatenate([figures(p)["upper_line_share"] for p in generated_by_style.values()]) if generated else []
    return {"styles": styles, "upper_line_ok": ok(np.asarray(shares)), "n": len(generated),
            "short_upper_line_ok": ok(np.array([upper_line_share(p) for p in generated if p.n_bars <= 8])),
            "min_real_pieces": MIN_REAL_PIECES, "upper_bars": UPPER_BARS, "real_range": list(REAL_RANGE)}


def structure_section(generated: list[Piece], real_first: list[Piece]) -> dict:
    def rows(pieces):
        out = []
        for p in pieces:
            d = theme_return_detail(p)
            out.append({"theme_return": d.score, "return_bar": d.bar, "shift": d.shift,
                        "bar_repetition": bar_repetition(p)})
        return out

    gen_rows, real_rows = rows(generated), rows(real_first)
    by_form: dict[str, dict] = {}
    for piece, row in zip(generated, gen_rows):
        form = piece.extra.get("form", "through")
        entry = by_form.setdefault(form, {"theme_return": [], "bar_repetition": []})
        entry["theme_return"].append(row["theme_return"])
        entry["bar_repetition"].append(row["bar_repetition"])
    real_by_kind: dict[str, dict] = {}
    for piece, row in zip(real_first, real_rows):
        kind = "games" if piece.game else "classical"
        entry = real_by_kind.setdefault(kind, {"theme_return": [], "bar_repetition": []})
        entry["theme_return"].append(row["theme_return"])
        entry["bar_repetition"].append(row["bar_repetition"])
    return {
        "generated_by_form": {f: {k: summary(v) for k, v in e.items()} for f, e in by_form.items()},
        "real": {"theme_return": summary([r["theme_return"] for r in real_rows]),
                 "bar_repetition": summary([r["bar_repetition"] for r in real_rows])},
        "real_by_kind": {k: {m: summary(v) for m, v in e.items()} for k, e in real_by_kind.items()},
        "generated": gen_rows,
        "real_pieces": [{"source": p.source, **r} for p, r in zip(real_first, real_rows)],
    }


def originality_section(index: OriginalityIndex, generated: list[Piece], real_first: list[Piece]) -> dict:
    gen = [index.longest_match(p) for p in generated]
    real = [index.longest_match(p) for p in real_first]

    def share(matches):
        return float(np.mean([m.bars >= COPY_BARS for m in matches])) if matches else math.nan

    return {
        "copy_bars": COPY_BARS,
        "generated_share": share(gen),
        "test_share": share(real),
        "generated_bars": summary([m.bars for m in gen]),
        "test_bars": summary([m.bars for m in real]),
        "generated": [{"bars": m.bars, "source": m.source, "start_bar": m.query_start_bar} for m in gen],
        "test": [{"piece": p.source, "bars": m.bars, "source": m.source} for p, m in zip(real_first, real)],
    }


def _windows_of(pieces: list[Piece], max_per_piece: int | None = None, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Window features of every piece, and the index of the piece each window came from."""
    feats, groups = [], []
    for k, piece in enumerate(pieces):
        X = window_features(piece.grid)
        if max_per_piece is not None and len(X) > max_per_piece:
            X = X[np.sort(rng.choice(len(X), max_per_piece, replace=False))]
        feats.append(X)
        groups += [k] * len(X)
    width = feats[0].shape[1] if feats else 0
    return (np.concatenate(feats) if feats else np.zeros((0, width))), np.array(groups, np.int64)


def _real_accuracy(clf, pieces: list[Piece], classes: list[str], rng, max_per_piece=None) -> dict:
    """Window and piece accuracy (plus per-label piece accuracy) of the style classifier."""
    X, groups = _windows_of(pieces, max_per_piece, rng)
    if len(X) == 0:
        return {"window_accuracy": math.nan, "piece_accuracy": math.nan, "piece_balanced_accuracy": math.nan,
                "per_label_piece_accuracy": {}, "windows": 0, "pieces": 0}
    y = np.array([classes.index(label_of(pieces[g])) for g in groups])
    uniq, pred = piece_predictions(clf, X, groups)
    truth = np.array([classes.index(label_of(pieces[g])) for g in uniq])
    per_label = {classes[c]: float((pred[truth == c] == c).mean()) for c in np.unique(truth)}
    return {"window_accuracy": float((clf.predict(X) == y).mean()), "piece_accuracy": float((pred == truth).mean()),
            "piece_balanced_accuracy": float(np.mean(list(per_label.values()))),
            "per_label_piece_accuracy": per_label, "windows": int(len(X)), "pieces": int(len(uniq))}


def style_section(real: RealData, generated: list[Piece], test_excerpts: list[Piece], cfg: EvalConfig,
                  layouts: list[list[bool] | None] | None = None) -> dict:
    """The style classifier (real train music only) on real test music and on the generated
    pieces; the real-vs-generated classifier on test excerpts vs generated pieces. Given each
    generated blend piece's ``layouts`` (``splices.composer_windows``), also how often real music of
    its two parents, spliced alike, is heard as one of them (``splices.real_splices``)."""
    rng = np.random.default_rng(cfg.seed)
    classes = real.games + real.composers
    train_pieces = real.pieces("train")
    X_train, g_train = _windows_of(train_pieces, cfg.style_windows_per_piece, rng)
    y_train = np.array([classes.index(label_of(train_pieces[g])) for g in g_train], np.int64)
    clf = train_classifier(X_train, y_train, classes, seed=cfg.seed)
    # the reference: held-out excerpts as long as the generated pieces, and whole held-out pieces
    real_result = _real_accuracy(clf, test_excerpts, classes, rng)
    real_result["whole_pieces"] = _real_accuracy(clf, real.pieces("test"), classes, rng, cfg.style_windows_per_piece)
    real_result["train_windows"] = int(len(X_train))

    # generated: one prediction per piece
    X_gen, g_gen = _windows_of(generated)
    by_piece = {}
    if len(X_gen):
        uniq_g, pred_g = piece_predictions(clf, X_gen, g_gen)
        by_piece = {int(g): classes[p] for g, p in zip(uniq_g, pred_g)}
    per_style: dict[str, dict] = {}
    pieces_out = []
    for k, piece in enumerate(generated):
        predicted = by_piece.get(k)
        style = style_name(piece)
        entry = per_style.setdefault(style, {"game": piece.game, "composer": piece.composer, "n": 0,
                                             "predicted": {}})
        entry["n"] += 1
        entry["predicted"][predicted] = entry["predicted"].get(predicted, 0) + 1
        pieces_out.append(predicted)
    for style, entry in per_style.items():
        n = entry["n"]
        entry["game_share"] = entry["predicted"].get(entry["game"], 0) / n if entry["game"] else None
        entry["composer_share"] = entry["predicted"].get(entry["composer"], 0) / n if entry["composer"] else None
        entry["accuracy"] = (entry["game_share"] or 0) + (entry["composer_share"] or 0)
    if layouts is not None:
        for style, spliced in real_splices(clf, classes, real, generated, layouts, cfg.seed).items():
            per_style[style]["real_splices"] = spliced

    def pooled(select):
        hits = total = 0
        for entry in per_style.values():
            if select(entry):
                label = entry["game"] or entry["composer"]
                hits += entry["predicted"].get(label, 0)
                total += entry["n"]
        return (hits / total if total else math.nan), total

    bach_acc, bach_n = pooled(lambda e: e["composer"] == "bach" and not e["game"])
    game_acc, game_n = pooled(lambda e: e["game"] and not e["composer"])
    composer_acc, composer_n = pooled(lambda e: e["composer"] and not e["game"])

    # real vs generated: held-out real excerpts of the generated pieces' styles, in their mix
    # (a blend counts half to each label), against the generated pieces. Unmatched, the real
    # side is mostly folk tunes (monophonic) and the classifier tells the styles apart, not the
    # music: kept as ``real_vs_generated_unmatched`` for comparison with older reports.
    mix = style_mix(generated)
    matched = real.matched_excerpts(mix, len(generated), cfg.bars * 16, seed=cfg.seed)
    X_real, g_real = _windows_of(matched)
    rvg = real_vs_generated(X_real, _sources(matched, g_real), X_gen, g_gen, seed=cfg.seed)
    rvg["real_labels"] = sorted({label_of(p) for p in matched})
    # Until 2026-12-06 each excerpt was its own group: the many excerpts of a label's two or three
    # held-out pieces fell into every fold, and the classifier learnt those pieces. Kept for older reports.
    by_excerpt = real_vs_generated(X_real, g_real, X_gen, g_gen, seed=cfg.seed)
    # What a model that wrote its training music back would score: training excerpts in the same mix.
    training = real.matched_excerpts(mix, len(generated), cfg.bars * 16, splits=("train",), seed=cfg.seed)
    X_train_ex, g_train_ex = _windows_of(training)
    floor = real_vs_generated(X_real, _sources(matched, g_real), X_train_ex, _sources(training, g_train_ex),
                              seed=cfg.seed)
    X_all, g_all = _windows_of(test_excerpts)
    unmatched = real_vs_generated(X_all, _sources(test_excerpts, g_all), X_gen, g_gen, seed=cfg.seed)
    return {"classes": classes, "real_test": real_result, "generated_per_style": per_style,
            "generated_predictions": pieces_out,
            "bach_accuracy": bach_acc, "bach_pieces": bach_n,
            "game_accuracy": game_acc, "game_pieces": game_n,
            "composer_accuracy": composer_acc, "composer_pieces": composer_n,
            "real_vs_generated": rvg, "real_vs_generated_by_excerpt": by_excerpt,
            "real_vs_training_music": floor, "real_vs_generated_unmatched": unmatched, "window_frames": WINDOW}


def _sources(pieces: list[Piece], groups: np.ndarray) -> np.ndarray:
    """The real piece each window comes from (``groups``: indices into ``pieces``, excerpts of
    them): cross-validation keeps all of one piece's excerpts in one fold."""
    return np.array([pieces[int(g)].source or f"excerpt {int(g)}" for g in groups], dtype=object)
