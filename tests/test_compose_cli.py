"""`mozart compose` and `mozart remix`: what their last lines say, the files they write, and the
example tunes README's remix line uses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli.compose import compose_command, remix_command
from composer.music.midi_io import import_midi

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def shipped_model(monkeypatch):
    monkeypatch.delenv("MOZART_CHECKPOINT", raising=False)
    monkeypatch.chdir(ROOT)  # README's commands run from the repository root


def run(command, args):
    result = CliRunner().invoke(command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_compose_says_its_form_and_that_it_loops(tmp_path):
    lines = run(compose_command, ["--style", "bach", "--bars", "8", "--time-signature", "3/4", "--seed", "4",
                                  "--loop", "--midi-only", "--out", str(tmp_path)])
    assert lines[0].startswith("composed 'bach' seed 4: 8 bars of 3/4")
    assert lines[1] == "  form AABA: a theme, its return, a bridge, the theme again"
    assert lines[2].startswith("  a loop: its end leads back into its start")
    assert lines[3:] == [f"  wrote {tmp_path / 'bach-4.mid'}", f"  wrote {tmp_path / 'bach-4.beats.json'}"]
    assert (tmp_path / "bach-4.mid").exists()

    lines = run(compose_command, ["--style", "bach", "--bars", "4", "--form", "through", "--seed", "4",
                                  "--midi-only", "--out", str(tmp_path)])
    assert lines[1].startswith("  through-composed: ") and not any("loop" in line for line in lines)


def test_remix_names_its_file_and_what_it_kept(tmp_path):
    midi = EXAMPLES / "ode-to-joy.mid"
    lines = run(remix_command, [str(midi), "--style", "doom-mozart", "--keep", "melody,drums", "--strength", "0.7",
                                "--seed", "3", "--midi-only", "--out", str(tmp_path)])
    assert lines[0].startswith(f"remixed {midi} as 'doom-mozart' seed 3: 16 bars of 4/4")
    assert lines[1] == "  kept its melody and drums; re-composed 70% of the rest"
    out = tmp_path / "ode-to-joy-doom-mozart-3.mid"  # the file says which tune it remixes
    assert lines[2:] == [f"  wrote {out}", f"  wrote {out.with_suffix('.beats.json')}"] and out.exists()

    lines = run(remix_command, [str(midi), "--style", "bach", "--keep", "", "--strength", "1", "--max-bars", "4",
                                "--seed", "3", "--midi-only", "--out", str(tmp_path)])
    assert f"remixed {midi} (its first 4 bars; --max-bars for more) as 'bach'" in lines[0]
    assert lines[1] == "  kept no voice whole; re-composed all of it"


@pytest.mark.slow
def test_readme_remix_lines_work_as_written_on_the_examples(tmp_path):
    """Every `mozart remix` line in README.md names a shipped example and runs as written."""
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"mozart remix [^\n`#]*", readme)
    assert len(commands) >= 2
    for command in commands:
        args = shlex.split(command)[2:]
        assert (ROOT / args[0]).exists(), f"README remixes {args[0]}, which the repository does not ship"
        lines = run(remix_command, [*args, "--out", str(tmp_path)])
        assert lines[0].startswith(f"remixed {args[0]} as ")
        stem = Path(args[0]).stem
        assert [p.suffix for p in sorted(tmp_path.glob(f"{stem}-*"))] == [".json", ".mid", ".mp3", ".png"]
        for path in tmp_path.iterdir():
            path.unlink()


def test_the_examples_are_small_named_and_read_as_music():
    midis = sorted(EXAMPLES.glob("*.mid"))
    assert 2 <= len(midis) <= 3 and sum(p.stat().st_size for p in midis) < 20_000
    index = (EXAMPLES / "README.md").read_text()
    for path in midis:
        assert f"`{path.name}`" in index  # each one's source is named beside it
        piece = import_midi(path)
        assert piece.n_bars >= 8 and piece.pitch_range() is not None


def test_compose_layers_and_a_stinger_from_the_command_line(tmp_path):
    from composer.cli.compose import stinger_command

    lines = run(compose_command, ["--style", "doom", "--bars", "4", "--form", "through", "--seed", "3", "--loop",
                                  "--layers", "--out", str(tmp_path)])
    assert any(line.startswith("  layers calm, explore, battle: ") for line in lines)
    written = {Path(line.split("wrote ", 1)[1]).name for line in lines if "wrote" in line}
    assert {"doom-3.ogg", "doom-3.wav", "doom-3.beats.json", "doom-3-calm.zip", "doom-3-battle.zip"} <= written
    lines = run(stinger_command, ["--from", str(tmp_path / "doom-3.mid"), "--kind", "victory", "--style", "doom",
                                  "--out", str(tmp_path)])
    assert lines[0].startswith(f"victory stinger for {tmp_path / 'doom-3.mid'} in 'doom': ")
    assert (tmp_path / "doom-3-victory.ogg").exists() and (tmp_path / "doom-3-victory.mid").exists()
