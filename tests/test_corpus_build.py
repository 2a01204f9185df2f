"""The corpus builder on user folders: labels, broken files, dedupe, caching."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from composer.music import tokens as T
from composer.corpus.build import build_corpus
from composer.cli.corpus import corpus
from composer.corpus.sources import base as sources_base
from composer.corpus.store import read_manifest
from composer.music.grid import Piece
from composer.music.midi_io import to_midi


def tiny_midi(seed: int, bars: int = 2) -> bytes:
    """A small two-voice MIDI file, different for every seed."""
    piece = Piece.empty(bars)
    piece.grid[::4, T.VOICE_INDEX["lead"]] = T.onset(60 + seed % 24)
    piece.grid[::8, T.VOICE_INDEX["bass"]] = T.onset(36 + seed % 12)
    piece.grid[seed % 16, T.VOICE_INDEX["counter"]] = T.onset(67)
    return to_midi(piece)


@pytest.fixture
def data_dir(tmp_path):
    """games/zelda (3 tunes + a corrupt file), games/metroid (1), composers/mendelssohn (2)."""
    files = {
        "games/zelda/overworld.mid": tiny_midi(1),
        "games/zelda/dungeon.mid": tiny_midi(2),
        "games/zelda/sub/fairy fountain.midi": tiny_midi(3),
        "games/zelda/broken.mid": b"MThd\x00\x00\x00\x06 this is not midi",
        "games/metroid/brinstar.mid": tiny_midi(4),
        "composers/mendelssohn/song1.mid": tiny_midi(5),
        "composers/mendelssohn/song2.mid": tiny_midi(6),
        "composers/mendelssohn/notes.txt": b"not music, ignored",
    }
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path


def build(data_dir, **options):
    return build_corpus(data_dir, sources=("user",), progress=False, echo=False, jobs=1, **options)


def test_builds_labelled_manifest_and_pieces(data_dir):
    report = build(data_dir)
    entries = {e["id"]: e for e in read_manifest(data_dir / "corpus" / "manifest.jsonl")}
    assert sorted(entries) == [
        "mendelssohn/song1",
        "mendelssohn/song2",
        "metroid/brinstar",
        "zelda/dungeon",
        "zelda/overworld",
        "zelda/sub-fairy-fountain",
    ]
    assert report.added == 6
    assert {e["game"] for e in entries.values()} == {"zelda", "metroid", None}
    assert {e["composer"] for e in entries.values()} == {"mendelssohn", None}
    e = entries["zelda/overworld"]
    assert e["source"] == "games/zelda/overworld.mid" and e["source_type"] == "user"
    assert (e["time_signature"], e["bars"], e["frames"], e["frames_per_bar"]) == ("4/4", 2, 32, 16)
    assert e["tempo"] == 120.0 and e["key"] and e["notes"] > 0
    piece = Piece.from_bytes((data_dir / "corpus" / e["file"]).read_bytes())
    assert piece.game == "zelda" and piece.n_frames == 32
    assert e["sha256"] == __import__("hashlib").sha256(piece.grid.tobytes()).hexdigest()


def test_corrupt_file_is_skipped_with_a_warning_naming_it(data_dir):
    report = build(data_dir)
    assert len(report.warnings) == 1
    assert "games/zelda/broken.mid" in report.warnings[0]
    assert "could not be read as MIDI" in report.warnings[0]


def test_second_run_does_nothing(data_dir, monkeypatch):
    build(data_dir)
    manifest = data_dir / "corpus" / "manifest.jsonl"
    before = manifest.stat().st_mtime_ns, manifest.read_bytes()
    calls = []
    real = sources_base.import_midi
    monkeypatch.setattr(sources_base, "import_midi", lambda *a, **k: calls.append(a) or real(*a, **k))
    report = build(data_dir)
    assert report.nothing_to_do and report.added == 0 and report.units_done == 0
    assert report.units_skipped == 7  # six pieces + the broken file, remembered as broken
    assert calls == []
    assert (manifest.stat().st_mtime_ns, manifest.read_bytes()) == before


def test_changed_added_and_removed_files_are_picked_up(data_dir):
    build(data_dir)
    (data_dir / "games/zelda/dungeon.mid").write_bytes(tiny_midi(7, bars=3))
    (data_dir / "games/metroid/brinstar.mid").unlink()
    (data_dir / "games/metroid/norfair.mid").write_bytes(tiny_midi(8))
    report = build(data_dir)
    assert report.units_done == 2 and report.removed == 2 and report.added == 2
    entries = {e["id"]: e for e in read_manifest(data_dir / "corpus" / "manifest.jsonl")}
    assert entries["zelda/dungeon"]["bars"] == 3
    assert "metroid/brinstar" not in entries and "metroid/norfair" in entries
    assert not (data_dir / "corpus/pieces/metroid/brinstar.mzg").exists()


def test_identical_grids_are_kept_once(data_dir):
    (data_dir / "games/zelda/zz overworld.midi").write_bytes(tiny_midi(1))  # sorts after overworld.mid
    report = build(data_dir)
    assert report.duplicates == 1 and report.added == 6
    state = json.loads((data_dir / "corpus" / "state.json").read_text())
    assert state["units"]["user:games/zelda/zz overworld.midi"]["duplicates"] == {
        "zelda/zz-overworld": "zelda/overworld"
    }


def test_only_builds_the_named_labels_and_rejects_unknown_ones(data_dir):
    report = build(data_dir, only=("metroid",))
    assert report.added == 1
    with pytest.raises(Exception, match="Unknown label 'zeldaa'.*zelda"):
        build(data_dir, only=("zeldaa",))


def test_multi_voice_abc_is_one_piece(tmp_path):
    """An ABC file with one tune per voice (as the Josquin files are) becomes one 2-voice piece."""
    abc = (
        "X:1\nT:Duet\nT:Cantus\nM:4/4\nL:1/4\nK:C\nc d e f|g a b c'|\n\n"
        "X:2\nT:Duet\nT:Bassus\nM:4/4\nL:1/4\nK:C\nC, D, E, F,|G, A, B, C|\n"
    )
    path = tmp_path / "composers/josquin/duet.abc"
    path.parent.mkdir(parents=True)
    path.write_text(abc)
    report = build(tmp_path)
    assert report.added == 1, report.warnings
    (entry,) = read_manifest(tmp_path / "corpus" / "manifest.jsonl")
    assert entry["id"] == "josquin/duet" and entry["title"] == "Duet" and entry["bars"] == 2
    piece = Piece.from_bytes((tmp_path / "corpus" / entry["file"]).read_bytes())
    assert piece.pitch_range() == (48, 84)  # ABC: C, = C3, c' = C6


def test_cli_build_stats_encode(data_dir):
    runner = CliRunner()
    args = ["--data", str(data_dir)]
    first = runner.invoke(corpus, ["build", *args, "--source", "user", "--jobs", "1"])
    assert first.exit_code == 0, first.output
    assert "6 pieces added" in first.output and "broken.mid" in first.output
    second = runner.invoke(corpus, ["build", *args, "--source", "user"])
    assert second.exit_code == 0 and "nothing to do" in second.output
    stats = runner.invoke(corpus, ["stats", *args])
    assert stats.exit_code == 0
    assert "games (2)" in stats.output and "composers (1)" in stats.output
    assert [l.split()[:2] for l in stats.output.splitlines() if l.strip().startswith("zelda")] == [["zelda", "3"]]
    encode = runner.invoke(corpus, ["encode", *args])
    assert encode.exit_code == 0, encode.output
    assert "metroid + " not in encode.output and "game:metroid has only 1 piece" in encode.output
    assert "nothing to do" in runner.invoke(corpus, ["encode", *args]).output


def test_stats_without_a_corpus_says_what_to_do(tmp_path):
    result = CliRunner().invoke(corpus, ["stats", "--data", str(tmp_path)])
    assert result.exit_code == 1 and "corpus build" in result.output


def test_score_files_parse_in_a_process_pool(tmp_path):
    folder = tmp_path / "composers/folk"
    folder.mkdir(parents=True)
    for n, notes in enumerate(("CDEF|GABc|", "cBAG|FEDC|", "EEFG|GFED|")):
        (folder / f"tune{n}.abc").write_text(f"X:1\nT:Tune {n}\nM:4/4\nL:1/4\nK:C\n{notes}\n")
    (folder / "bad.krn").write_text("this is not humdrum\n")
    report = build_corpus(tmp_path, sources=("user",), progress=False, echo=False, jobs=2)
    assert report.added == 3
    assert [w for w in report.warnings if "composers/folk/bad.krn" in w]
    ids = [e["id"] for e in read_manifest(tmp_path / "corpus" / "manifest.jsonl")]
    assert ids == ["folk/tune0", "folk/tune1", "folk/tune2"]


def test_every_registered_source_loads_and_the_cli_offers_it():
    from composer.corpus.sources import REGISTRY, SOURCES, load_source
    from composer.corpus.sources.base import Source

    assert SOURCES == ("debian", "tracker", "music21", "folk", "user")
    assert all(issubclass(load_source(name), Source) for name in REGISTRY)
    build_command = corpus.commands["build"]
    (choice,) = [p.type.choices for p in build_command.params if p.name == "sources"]
    assert tuple(choice) == SOURCES


def test_unknown_sources_and_options_are_refused(tmp_path):
    with pytest.raises(Exception, match="Unknown source 'mididb'.*debian, tracker, music21, folk, user"):
        build_corpus(tmp_path, sources=("mididb",))
    with pytest.raises(TypeError, match="palestrina_capp"):
        build_corpus(tmp_path, palestrina_capp=3)
