"""The beat map beside every MIDI: tempo, metre, bar and beat times in seconds, sections, loop."""

from __future__ import annotations

import json

from click.testing import CliRunner

from composer.music.grid import Piece
from composer.render import render
from composer.render.beatmap import beat_map


def test_beat_times_of_a_waltz_at_90_bpm():
    piece = Piece.empty(4, (3, 4), tempo=90.0, sections=["A", "A", "B", "A"])
    beats = beat_map(piece)
    assert (beats["tempo"], beats["time_signature"], beats["bars"], beats["beats_per_bar"]) == (90.0, [3, 4], 4, 3)
    assert beats["seconds_per_beat"] == round(60 / 90, 9)
    assert beats["bars_s"] == [0.0, 2.0, 4.0, 6.0] and beats["length_seconds"] == 8.0
    assert len(beats["beats_s"]) == 12 and beats["beats_s"][:4] == [0.0, 0.666667, 1.333333, 2.0]
    assert beats["sections"] == [{"label": "A", "bar": 0, "start_s": 0.0}, {"label": "B", "bar": 2, "start_s": 4.0},
                                 {"label": "A", "bar": 3, "start_s": 6.0}]
    assert beats["loop"] is None


def test_a_jig_counts_eighths_and_a_loop_says_where_it_loops():
    piece = Piece.empty(2, (6, 8), tempo=120.0, extra={"loop": True})
    beats = beat_map(piece)
    assert beats["beats_s"][:3] == [0.0, 0.25, 0.5] and beats["bars_s"] == [0.0, 1.5]
    assert beats["loop"] == {"start_seconds": 0.0, "end_seconds": 3.0} and beats["sections"] == []


def test_the_beat_map_goes_beside_the_midi_of_every_export(tmp_path):
    from composer.cli.compose import compose_command

    piece = Piece.empty(2, tempo=100.0)
    rendered = render(piece, formats=("mid",), out_dir=tmp_path, basename="p")
    assert json.loads((tmp_path / "p.beats.json").read_text()) == beat_map(piece) == json.loads(rendered["beats"])
    result = CliRunner().invoke(compose_command, ["--style", "bach", "--bars", "4", "--form", "through", "--seed", "1",
                                                  "--midi-only", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["bach-1.beats.json", "bach-1.mid"]
