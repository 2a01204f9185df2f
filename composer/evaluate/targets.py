"""Issue 7's targets: their thresholds, and the verdict on a report's figures.

``judge_targets`` gives each target a status, ``met``, ``missed`` or ``not measured``
(docs/EVALUATION.md quotes them):

* ``likelihood``: met when the model's test continuation NLL is below both the n-gram's
  and the unidirectional LSTM's; missed when it is not below one of them; not measured
  when the section was skipped, or when the model beats the n-gram and no LSTM baseline
  was scored (``--baseline-lstm``).
* ``statistics``: met when the mean overlap generated-vs-test is at least the held-out
  test-vs-train overlap minus ``OVERLAP_MARGIN``; not measured when either is undefined.
* ``theme_return``: met when the AABA pieces' median theme return lies within the real
  pieces' ``THEME_PERCENTILES`` range (ends included); not measured without AABA pieces or
  real pieces long enough.
* ``originality``: met when at most ``COPY_SHARE`` of the generated pieces share
  ``COPY_BARS`` bars or more with a training piece; not measured without generated pieces.
* ``style``: met when generated bach and generated game styles are both classified as
  their style at least ``STYLE_ACCURACY`` of the time; missed when a measured one is
  below; otherwise (one or both not generated) not measured.
* ``upper_line``: met when at least ``UPPER_LINE_SHARE`` of the generated pieces have a
  voice above the bass in three quarters of their bars.
* ``texture``: met when, for every style with a real range, the generated median of each
  texture figure lies inside that style's real 10-90 % range; not measured without such a style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["OVERLAP_MARGIN", "COPY_BARS", "COPY_SHARE", "STYLE_ACCURACY", "THEME_PERCENTILES", "UPPER_LINE_SHARE",
           "STATUSES",
           "TARGETS", "judge_targets"]

OVERLAP_MARGIN = 0.10  # statistics overlap >= held-out-vs-train overlap - this
COPY_BARS = 2.0  # a "copy": a span of at least this many bars shared with a training piece
COPY_SHARE = 0.15  # at most this share of generated pieces may hold one
STYLE_ACCURACY = 0.70  # style classifier accuracy on generated bach and game styles
THEME_PERCENTILES = (10, 90)  # "within the range of real pieces"
UPPER_LINE_SHARE = 0.98  # of pieces with a line above the bass in three quarters of their bars

MET, MISSED, NOT_MEASURED = STATUSES = ("met", "missed", "not measured")


def _known(x) -> bool:
    return x is not None and math.isfinite(x)


def _pct(share: float) -> str:
    return f"{share * 100:g} %"


def _verdict(status: str, detail: str, close: str = "") -> dict:
    return {"status": status, "detail": detail, "close": close}


def _likelihood(fig: dict) -> dict:
    lk = fig.get("likelihood")
    if not lk:
        return _verdict(NOT_MEASURED, "likelihood skipped")
    models = lk["models"]
    # A v2 composer continues a piece with its draft network: that is the one to score.
    mine = models.get("draft", models["model"])["continuation"]["nll"]
    ngram = models["ngram"]["continuation"]["nll"]
    lstm = models.get("lstm", {}).get("continuation", {}).get("nll")
    if not (_known(mine) and _known(ngram)):
        return _verdict(NOT_MEASURED, "no test continuation NLL (no test piece longer than a bar)")
    beats_ngram = mine < ngram
    text = f"test continuation NLL {mine:.3f} nats/cell vs n-gram {ngram:.3f}"
    if _known(lstm):
        text += f" and unidirectional LSTM {lstm:.3f}"
        status = MET if beats_ngram and mine < lstm else MISSED
    else:
        text += ("; beats the n-gram" if beats_ngram else "") + "; LSTM baseline not measured (pass --baseline-lstm)"
        status = NOT_MEASURED if beats_ngram else MISSED
    return _verdict(status, text, "train longer or larger; more 'future' masks in training; average several "
                                  "Gibbs orderings at scoring time")


def _statistics(fig: dict) -> dict:
    st = fig["statistics"]
    real, have = st["mean_overlap_test_train"], st["mean_overlap_generated_test"]
    if not (_known(real) and _known(have)):
        return _verdict(NOT_MEASURED, "no overlap: a set is empty, or the real excerpts hold none of the "
                                      "generated styles' labels", "generate styles the test split holds")
    need = real - OVERLAP_MARGIN
    worst = sorted(((v["overlap_generated_test"] if _known(v["overlap_generated_test"]) else math.nan, m)
                    for m, v in st["metrics"].items()), key=lambda x: np.nan_to_num(x[0], nan=9))[:3]
    return _verdict(MET if have >= need else MISSED,
                    f"mean overlap generated-vs-test {have:.3f}; held-out test-vs-train {real:.3f}"
                    f" - {OVERLAP_MARGIN:.2f} = {need:.3f}",
                    "furthest apart: " + ", ".join(f"{m} ({v:.2f})" for v, m in worst)
                    + "; tune temperature/top-p, or more Gibbs steps")


def _theme_return(fig: dict) -> dict:
    stc = fig["structure"]
    aaba = stc["generated_by_form"].get("AABA", {}).get("theme_return")
    real = stc["real"]["theme_return"]
    if not (aaba and aaba["n"] and real["n"]):
        return _verdict(NOT_MEASURED, "no AABA pieces or no real pieces long enough", "use --n >= 4 and --bars >= 8")
    lo, hi = real["p10"], real["p90"]
    return _verdict(MET if lo <= aaba["median"] <= hi else MISSED,
                    f"AABA median {aaba['median']:.3f} (n={aaba['n']}); real pieces' {THEME_PERCENTILES[0]}-"
                    f"{THEME_PERCENTILES[1]} % range {lo:.3f}-{hi:.3f} (median {real['median']:.3f}, n={real['n']})",
                    "repeats too exact: raise the form's variation share" if aaba["median"] > hi else
                    "theme does not come back: lower variation, keep A's lead in the repeats")


def _originality(fig: dict) -> dict:
    og = fig["originality"]
    g, r = og["generated_share"], og["test_share"]
    if not _known(g):
        return _verdict(NOT_MEASURED, "no generated pieces", "use --n >= 1")
    return _verdict(MET if g <= COPY_SHARE else MISSED,
                    f"{g:.1%} of generated pieces share >= {COPY_BARS:g} bars with a training piece "
                    f"(target <= {COPY_SHARE:.0%}); held-out real music: {r:.1%}",
                    "reject and re-sample pieces over the threshold (the bot already measures every piece); "
                    "more style dropout; lower temperature makes copying likelier")


def _style(fig: dict) -> dict:
    sy = fig["style"]
    accuracies = [a for a in (sy["bach_accuracy"], sy["game_accuracy"]) if _known(a)]
    if any(a < STYLE_ACCURACY for a in accuracies):
        status = MISSED
    else:
        status = MET if len(accuracies) == 2 else NOT_MEASURED
    return _verdict(status,
                    f"generated bach {sy['bach_accuracy']:.0%} (n={sy['bach_pieces']}), generated game styles "
                    f"{sy['game_accuracy']:.0%} (n={sy['game_pieces']}); target >= {STYLE_ACCURACY:.0%}; real test "
                    f"pieces {sy['real_test']['piece_accuracy']:.0%} (excerpts of the same length)",
                    "stronger style conditioning (less style dropout, classifier-free guidance at sampling)")


def _upper_line(fig: dict) -> dict:
    tx = fig.get("texture")
    if not tx or not _known(tx["upper_line_ok"]):
        return _verdict(NOT_MEASURED, "no texture figures")
    worst = sorted((row["upper_line_ok"], style) for style, row in tx["styles"].items())[:3]
    return _verdict(MET if tx["upper_line_ok"] >= UPPER_LINE_SHARE else MISSED,
                    f"{tx['upper_line_ok']:.1%} of {tx['n']} pieces have a voice above the bass in >= "
                    f"{tx['upper_bars']:.0%} of their bars (target >= {UPPER_LINE_SHARE:.0%}); lowest: "
                    + ", ".join(f"{style} {share:.0%}" for share, style in worst),
                    "plan the texture (composer/nn/texture.py) so that a line above the bass is always planned")


def _texture(fig: dict) -> dict:
    tx = fig.get("texture")
    judged = [(style, name, f) for style, row in (tx or {}).get("styles", {}).items()
              for name, f in row["figures"].items() if "inside" in f and name != "drum_groove"]
    if not judged:
        return _verdict(NOT_MEASURED, "no style with a real range")
    outside = [f"{style} {name} {f['generated_median']:.2f} (real {f['real_low']:.2f}-{f['real_high']:.2f})"
               for style, name, f in judged if not f["inside"]]
    styles = len({style for style, _, _ in judged})
    return _verdict(MISSED if outside else MET,
                    f"{len(judged) - len(outside)} of {len(judged)} figures of {styles} styles inside the real "
                    f"10-90 % range" + (f"; outside: {'; '.join(outside[:8])}" if outside else ""),
                    "texture plans from the style's real bars, a stronger plan, or more of the style in training")


@dataclass(frozen=True)
class Target:
    title: str  # how the report's Targets table names it
    judge: Callable[[dict], dict]  # figures -> {"status", "detail", "close"}


TARGETS: dict[str, Target] = {
    "likelihood": Target("Beats both baselines on test NLL", _likelihood),
    "statistics": Target(f"Musical statistics overlap real >= held-out-vs-train - {_pct(OVERLAP_MARGIN)}", _statistics),
    "theme_return": Target("Theme return of AABA pieces within the range of real pieces", _theme_return),
    "originality": Target(f"<= {_pct(COPY_SHARE)} of pieces share >= {COPY_BARS:g} bars with a training piece",
                          _originality),
    "style": Target(f"Style accuracy on generated bach and game styles >= {_pct(STYLE_ACCURACY)}", _style),
    "upper_line": Target(f"A voice above the bass in >= 3/4 of the bars of >= {_pct(UPPER_LINE_SHARE)} of pieces",
                         _upper_line),
    "texture": Target("Each style's texture medians inside its real 10-90 % range", _texture),
}


def judge_targets(fig: dict) -> dict:
    """Each target's status (see the module docstring), the figures it rests on
    (``detail``) and, unless met, what would close it (``close``)."""
    return {key: target.judge(fig) for key, target in TARGETS.items()}
