"""`python -m composer eval versus OLD NEW`: two reports' figures side by side, per target.

Reads the ``figures.json`` of two ``eval run`` reports made with the same plan (seeds,
styles, bars) and prints a markdown table: each figure a target is judged on, both
models' values, and whether the newer meets the target.
"""

from __future__ import annotations



from composer.evaluate.formatting import fmt, table

REAL_VS_GENERATED = 0.70  # a classifier should do little better than chance
OVERLAP = 0.82  # statistics overlap with held-out music
OLD = "old"  # a bound that is the older model's own figure


def _rows(fig: dict) -> dict[str, tuple[str, float | None, float | None]]:
    """target -> (shown value, the number judged, the bound it must not exceed, or ``OLD``)."""
    st, sy, lk = fig["statistics"], fig["style"], fig.get("likelihood") or {}
    models = lk.get("models", {})
    composer = models.get("draft", models.get("model", {}))
    lstm = models.get("lstm", {})
    rows = {}
    rvg = sy["real_vs_generated"]["balanced_accuracy"]
    rows["real-vs-generated balanced accuracy ≤ 70 %"] = (fmt(rvg, pct=True), rvg, REAL_VS_GENERATED)
    overlap = st["mean_overlap_generated_test"]
    rows["statistics overlap ≥ 0.82"] = (fmt(overlap, 3), -overlap, -OVERLAP)
    for metric, label in (("rest_rate", "rest rate"), ("polyphony", "polyphony")):
        m = st["metrics"][metric]
        mean, lo, hi = m["generated"]["mean"], m["test"]["p10"], m["test"]["p90"]
        inside = lo <= mean <= hi
        rows[f"{label} inside the real 10–90 % range"] = (
            f"{fmt(mean, 2)} (real {fmt(lo, 2)}–{fmt(hi, 2)})", 0.0 if inside else 1.0, 0.5)
    for key, label in (("bach", "generated bach"), ("game", "generated game styles")):
        acc = sy[f"{key}_accuracy"]
        rows[f"style accuracy ≥ 70 %: {label}"] = (f"{fmt(acc, pct=True)} (n={sy[f'{key}_pieces']})", -acc, -0.70)
    cont, base = composer.get("continuation", {}).get("nll"), lstm.get("continuation", {}).get("nll")
    rows["continuation NLL below the unidirectional LSTM's"] = (
        f"{fmt(cont)} vs {fmt(base)}", cont, base)
    masked = models.get("model", {}).get("masked", {}).get("0.5", {}).get("nll")
    rows["masked-cell NLL (rate 0.5) of the infiller below the old model's"] = (fmt(masked), masked, OLD)
    aaba = fig["structure"]["generated_by_form"].get("AABA", {}).get("theme_return", {})
    real = fig["structure"]["real"]["theme_return"]
    inside = aaba.get("n") and real["p10"] <= aaba["median"] <= real["p90"]
    rows["AABA theme return inside the real range"] = (
        f"{fmt(aaba.get('median'))} (real {fmt(real['p10'])}–{fmt(real['p90'])})", 0.0 if inside else 1.0, 0.5)
    copies = fig["originality"]["generated_share"]
    rows["≤ 15 % of pieces copy ≥ 2 bars"] = (fmt(copies, pct=True), copies, 0.15)
    return rows


def versus_table(old: dict, new: dict, old_name: str = "v1", new_name: str = "v2") -> str:
    a, b = _rows(old), _rows(new)
    lines = []
    for target, (shown, value, bound) in b.items():
        if bound == OLD:
            bound = a.get(target, (None, None))[1]
        if value is None or bound is None:
            verdict = "–"
        else:
            verdict = "**met**" if value <= bound else "**missed**"
        lines.append([target, a.get(target, ("–",))[0], shown, verdict])
    return table(["target", old_name, new_name, f"{new_name} verdict"], lines)
