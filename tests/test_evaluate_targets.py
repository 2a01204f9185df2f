"""The verdicts docs/EVALUATION.md quotes: each target met just inside its threshold, missed
just outside, and "not measured" when its figures are missing."""

from __future__ import annotations

import math

import pytest

from composer.evaluate.targets import (
    COPY_SHARE,
    OVERLAP_MARGIN,
    STYLE_ACCURACY,
    TARGETS,
    UPPER_LINE_SHARE,
    judge_targets,
)

EPS = 1e-3
REAL_OVERLAP = 0.8  # held-out test vs train: generated pieces need REAL_OVERLAP - OVERLAP_MARGIN
THEME_RANGE = (0.2, 0.8)  # real pieces' 10th and 90th percentiles of theme return


def figures(*, model=0.7, ngram=0.8, lstm: float | None = 0.75, likelihood=True, overlap=REAL_OVERLAP,
            real_overlap=REAL_OVERLAP, aaba=0.5, aaba_n=4, real_n=10, copies=0.0, bach=0.9, game=0.9,
            upper=1.0, density: float | None = 12.0) -> dict:
    """The figures ``judge_targets`` reads, every target met unless told otherwise."""
    models = {"model": {"continuation": {"nll": model}}, "ngram": {"continuation": {"nll": ngram}}}
    if lstm is not None:
        models["lstm"] = {"continuation": {"nll": lstm}}
    by_form = {"AABA": {"theme_return": {"n": aaba_n, "median": aaba}}} if aaba_n is not None else {}
    fig = {
        "statistics": {"mean_overlap_generated_test": overlap, "mean_overlap_test_train": real_overlap,
                       "metrics": {"pitch_range": {"overlap_generated_test": overlap},
                                   "polyphony": {"overlap_generated_test": None}}},
        "structure": {"generated_by_form": by_form,
                      "real": {"theme_return": {"n": real_n, "p10": THEME_RANGE[0], "p90": THEME_RANGE[1],
                                                "median": 0.4}}},
        "originality": {"generated_share": copies, "test_share": 0.3},
        "style": {"bach_accuracy": bach, "game_accuracy": game, "bach_pieces": 4, "game_pieces": 8,
                  "real_test": {"piece_accuracy": 0.8}},
        "texture": {"upper_line_ok": upper, "n": 40, "upper_bars": 0.75,
                    "styles": {"doom": {"upper_line_ok": upper, "figures": {
                        "note_density": {"generated_median": density, "real_low": 10.0, "real_high": 20.0,
                                         "inside": density is not None and 10.0 <= density <= 20.0},
                        "drum_groove": {"generated_median": 0.2, "real_low": 0.8, "real_high": 0.9, "inside": False},
                    }} if density is not None else {"upper_line_ok": upper, "figures": {}}}},
    }
    if likelihood:
        fig["likelihood"] = {"models": models}
    return fig


def status(target: str, **changes) -> str:
    return judge_targets(figures(**changes))[target]["status"]


def test_every_target_is_judged_and_met_figures_are_met():
    verdicts = judge_targets(figures())
    assert list(verdicts) == list(TARGETS)
    assert {v["status"] for v in verdicts.values()} == {"met"}
    assert all(v["detail"] for v in verdicts.values())


@pytest.mark.parametrize("changes, expected", [
    ({"model": 0.7, "ngram": 0.7 + EPS, "lstm": 0.7 + EPS}, "met"),
    ({"model": 0.7, "ngram": 0.7 - EPS, "lstm": 0.8}, "missed"),
    ({"model": 0.7, "ngram": 0.8, "lstm": 0.7 - EPS}, "missed"),
    ({"model": 0.7, "ngram": 0.7 - EPS, "lstm": None}, "missed"),  # loses to the n-gram: no LSTM needed to say so
    ({"model": 0.7, "ngram": 0.8, "lstm": None}, "not measured"),  # beats the n-gram, LSTM not scored
    ({"likelihood": False}, "not measured"),
    ({"model": math.nan}, "not measured"),
], ids=["below-both", "above-ngram", "above-lstm", "above-ngram-no-lstm", "no-lstm", "skipped", "nan"])
def test_likelihood_beats_both_baselines(changes, expected):
    assert status("likelihood", **changes) == expected


@pytest.mark.parametrize("changes, expected", [
    ({"overlap": REAL_OVERLAP - OVERLAP_MARGIN + EPS}, "met"),
    ({"overlap": REAL_OVERLAP - OVERLAP_MARGIN - EPS}, "missed"),
    ({"overlap": math.nan}, "not measured"),
    ({"real_overlap": math.nan}, "not measured"),
    ({"overlap": None}, "not measured"),  # as figures.json stores NaN
], ids=["above", "below", "nan", "real-nan", "none"])
def test_statistics_overlap_within_the_margin_of_real_music(changes, expected):
    assert status("statistics", **changes) == expected


@pytest.mark.parametrize("changes, expected, close", [
    ({"aaba": THEME_RANGE[0]}, "met", None),
    ({"aaba": THEME_RANGE[1]}, "met", None),
    ({"aaba": THEME_RANGE[0] - EPS}, "missed", "does not come back"),
    ({"aaba": THEME_RANGE[1] + EPS}, "missed", "too exact"),
    ({"aaba_n": None}, "not measured", None),
    ({"aaba_n": 0}, "not measured", None),
    ({"real_n": 0}, "not measured", None),
], ids=["p10", "p90", "below", "above", "no-aaba", "no-aaba-value", "no-real"])
def test_theme_return_within_the_range_of_real_pieces(changes, expected, close):
    verdict = judge_targets(figures(**changes))["theme_return"]
    assert verdict["status"] == expected
    if close:
        assert close in verdict["close"]


@pytest.mark.parametrize("changes, expected", [
    ({"copies": COPY_SHARE}, "met"),
    ({"copies": COPY_SHARE + EPS}, "missed"),
    ({"copies": math.nan}, "not measured"),
], ids=["at-share", "above", "no-pieces"])
def test_originality_share_of_copies(changes, expected):
    assert status("originality", **changes) == expected


@pytest.mark.parametrize("changes, expected", [
    ({"bach": STYLE_ACCURACY, "game": STYLE_ACCURACY}, "met"),
    ({"bach": STYLE_ACCURACY - EPS, "game": 0.9}, "missed"),
    ({"bach": 0.9, "game": STYLE_ACCURACY - EPS}, "missed"),
    ({"bach": math.nan, "game": STYLE_ACCURACY - EPS}, "missed"),  # one measured figure below is enough
    ({"bach": math.nan, "game": 0.9}, "not measured"),
    ({"bach": math.nan, "game": math.nan}, "not measured"),
], ids=["at-threshold", "bach-below", "game-below", "no-bach-game-below", "no-bach", "neither"])
def test_style_accuracy_on_bach_and_game_styles(changes, expected):
    assert status("style", **changes) == expected


@pytest.mark.parametrize("changes, expected", [
    ({"upper": UPPER_LINE_SHARE}, "met"),
    ({"upper": UPPER_LINE_SHARE - EPS}, "missed"),
    ({"upper": math.nan}, "not measured"),
], ids=["at", "below", "nan"])
def test_a_line_above_the_bass_in_nearly_every_piece(changes, expected):
    assert status("upper_line", **changes) == expected


@pytest.mark.parametrize("changes, expected", [
    ({"density": 10.0}, "met"),  # the drum groove is reported beside the range, not judged
    ({"density": 20.0 + EPS}, "missed"),
    ({"density": None}, "not measured"),  # no style with a real range
], ids=["inside", "outside", "no-range"])
def test_texture_medians_inside_each_styles_real_range(changes, expected):
    assert status("texture", **changes) == expected
