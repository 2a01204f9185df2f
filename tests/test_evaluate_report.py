"""End to end: `python -m composer eval` on the tiny fixtures writes the report and its figures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from composer.cli import cli
from composer.evaluate.plan import EvalConfig, default_styles, plan_requests
from composer.evaluate.real import RealData
from composer.evaluate.targets import STATUSES, TARGETS
from composer.evaluate.writer import STATUS_MARKS
from composer.generate.request import FORMS
from tests.conftest import TEMPO


@pytest.mark.slow
def test_eval_writes_report_and_figures(tiny_checkpoint, encoded_dir, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["eval", "--checkpoint", str(tiny_checkpoint), "--n", "4", "--data",
                                      str(encoded_dir), "--out", str(out), "--device", "cpu", "--positions", "64",
                                      "--windows", "8"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    figures = json.loads((out / "figures.json").read_text())
    assert list(figures["targets"]) == list(TARGETS)
    for key, target in figures["targets"].items():  # the Targets table, as docs/EVALUATION.md quotes it
        assert target["status"] in STATUSES, key
        close = "" if target["status"] == "met" else target["close"]
        assert f"| {TARGETS[key].title} | {STATUS_MARKS[target['status']]} | {target['detail']} | {close} |" in md
        assert f"{key:13s} {target['status']:13s} {target['detail']}" in result.output  # and as the command says it
    for section in ("## Targets", "## 1. Likelihood", "## 2. Musical statistics", "## 3. Structure",
                    "## 4. Originality", "## 5. Style fidelity"):
        assert section in md
    for image in ("statistics.png", "likelihood.png", "self_similarity.png", "originality.png"):
        assert (out / image).read_bytes()[:4] == b"\x89PNG"
        assert f"]({image})" in md
    assert len(figures["pieces"]) == 4
    assert {p["form"] for p in figures["pieces"]} == set(list(FORMS)[:4])  # the plan cycles over every form
    models = figures["likelihood"]["models"]
    assert models["model"]["continuation"]["nll"] > 0 and models["ngram"]["continuation"]["nll"] > 0
    assert set(models["model"]["masked"]) == {"0.25", "0.5", "0.75", "1.0"}
    assert figures["originality"]["test_share"] == 1.0  # the synthetic corpus repeats one arpeggio
    assert "held-out real music: 100.0%" in figures["targets"]["originality"]["detail"]
    likelihood = figures["targets"]["likelihood"]  # no LSTM baseline: never claimed met
    assert likelihood["status"] != "met" and "pass --baseline-lstm" in likelihood["detail"]

    # The same report twice, side by side: every target row, both columns equal, no verdict without a bound.
    versus = CliRunner().invoke(cli, ["eval", "versus", str(out), str(out), "--names", "old,new"])
    assert versus.exit_code == 0, versus.output
    rows = [line.split(" | ") for line in versus.output.splitlines()[2:]]
    assert len(rows) == 10 and all(row[1] == row[2] for row in rows)
    copies = figures["originality"]["generated_share"]
    verdict = "**met**" if copies <= 0.15 else "**missed**"
    assert f"| ≤ 15 % of pieces copy ≥ 2 bars | {copies:.0%} | {copies:.0%} | {verdict} |" in versus.output
    assert "| continuation NLL below the unidirectional LSTM's |" in versus.output and " n/a | – |" in versus.output
    assert "| masked-cell NLL (rate 0.5) of the infiller below the old model's |" in versus.output


def test_compare_takes_one_budget_minutes_or_steps():
    for budget in ([], ["--minutes", "1", "--max-steps", "30"]):
        result = CliRunner().invoke(cli, ["eval", "compare", *budget])
        assert result.exit_code == 2 and "--minutes (wall clock) or --max-steps" in result.output


def test_eval_help_lists_run_and_compare():
    result = CliRunner().invoke(cli, ["eval", "--help"])
    assert result.exit_code == 0 and "run" in result.output and "compare" in result.output
    result = CliRunner().invoke(cli, ["eval", "compare", "--help"])
    assert "--resume-existing" in result.output and "--archs" in result.output


def test_the_plan_covers_styles_and_forms(generator):
    styles = default_styles(generator.catalog)
    assert styles[:2] == ["bach", "zelda-bach"]
    assert {"dink", "doom", "mozart"} <= set(styles)
    requests = plan_requests(generator.catalog, EvalConfig(n=24))
    assert [r.seed for r in requests] == list(range(24))
    by_style = {}
    for r in requests:
        by_style.setdefault(r.style, set()).add(r.form)
    assert all(len(forms) >= 3 for forms in by_style.values())  # every style meets several forms


def test_real_excerpts_are_bar_aligned_in_their_own_meter(encoded_dir):
    real = RealData.load(encoded_dir.parent)  # the data root reads the same corpus
    assert real.folder == encoded_dir and real.splits["test"].ids == RealData.load(encoded_dir).splits["test"].ids
    first = real.excerpts("test", 64, first=True)
    assert sorted(p.time_signature for p in first) == [(3, 4), (4, 4), (4, 4), (4, 4)]
    assert all(p.n_frames == 64 // p.frames_per_bar * p.frames_per_bar for p in first)  # 4 bars of 4/4, 5 of 3/4
    assert {p.source for p in first} == {f"corpus:{i}" for i in real.splits["test"].ids}
    assert all(p.labels for p in first) and {p.tempo for p in first} == set(TEMPO.values())
    many = real.excerpts("train", 64, per_piece=2, seed=0)
    assert len(many) == 9 * 2 + 3 * 1  # 8-bar pieces: two 4-bar excerpts in 4/4, one 5-bar excerpt in 3/4
    assert all(p.grid[0, 0] >= 2 for p in many)  # each starts on a note: no orphan hold


@pytest.mark.slow
def test_compare_trains_evaluates_and_resumes(encoded_dir, tmp_path):
    from composer.evaluate.compare import compare, run_complete

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({
        "train": {"window_bars": 4, "batch_size": 8, "lr": 5e-3, "val_max_windows": 8, "warmup_steps": 5},
        "model": {"embed_dim": 8, "style_dim": 4, "hidden": 16, "lstm_layers": 1, "transformer_layers": 1,
                  "attn_heads": 2}}))
    out = tmp_path / "compare"
    # a budget in steps, not minutes: a busy machine must not leave a run with fewer steps than the test needs
    result = CliRunner().invoke(cli, ["eval", "compare", "--max-steps", "30", "--archs", "lstm,td_bilstm", "--out",
                                      str(out), "--config", str(config), "--data", str(encoded_dir), "--n", "4",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    path = out / "compare.md"
    assert run_complete(out / "runs" / "lstm") and run_complete(out / "runs" / "td_bilstm")
    summary = json.loads((out / "compare.json").read_text())
    assert set(summary["figures"]) == {"lstm", "td_bilstm"}
    assert summary["figures"]["lstm"]["test_masked_nll_0.5"] is None  # the causal model has none
    assert summary["figures"]["td_bilstm"]["test_continuation_nll"] > 0
    assert [r["step"] for r in summary["curves"]["td_bilstm"]] == [2 * k for k in range(1, 16)]  # exactly the steps asked for
    assert (out / "learning_curves.png").exists() and (out / "lstm" / "report.md").exists()
    assert "td_bilstm" in path.read_text() and "Each trained for 30 steps" in path.read_text()
    stamp = (out / "runs" / "lstm" / "config.json").stat().st_mtime
    compare(["lstm"], None, out, data=str(encoded_dir), config_path=str(config), n=4, device="cpu",
            resume_existing=True, max_steps=30)
    assert (out / "runs" / "lstm" / "config.json").stat().st_mtime == stamp  # not trained again
