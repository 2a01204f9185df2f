"""The ``folk`` source on tiny ABC books written here (no network, no real collections)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from composer.corpus.build import build_corpus
from composer.cli.corpus import corpus
from composer.corpus.sources import folk
from composer.corpus.store import read_manifest

REEL = """\
X:1
T:The Test Reel
M:4/4
L:1/8
R:reel
K:D
A|d2fd edcB|A2FA DFAF|G2BG FAdf|edcB A3:|
"""

WALTZ = """\
X:1
T:Sligo Waltz
M:3/4
L:1/4
K:G
D|G B d|g2 f|e c A|F3|G B d|g2 b|a f d|g2:|
"""

# An O'Neill-style book: a jig with a tempo, a slow air in 3/4 and a 2/4 march, after a
# file header whose L:1/4 applies to the tunes that do not set their own.
BOOK = """\
% a book header comment
L:1/4

X:1
T:Jig of the Test
M:6/8
L:1/8
Q:3/8=120
K:G
D|GAB dBG|cBA BGE|DEG AGA|BGE G2:|

X:2
T:Air of the Test
M:3/4
K:Am
E|A2 B|c2 B|A3|E3|

X:3
T:March of the Test
M:2/4
L:1/8
K:D
fe|d2 A2|F2 A2|d2 f2|a4|
"""

# Essen-style: two variants sharing one title (must stay two pieces), one broken tune.
SONGS = """\
X:1
T:Graf und Nonne
M:3/4
L:1/8
K:C
C2 E2 G2|c4 G2|E2 D2 C2|C6|

X:2
T:Graf und Nonne
M:3/4
L:1/8
K:C
E2 G2 c2|e4 d2|c2 B2 A2|G6|

X:3
T:Kaputt
M:3/4
L:1/8
K:C
[[[CEG
"""

BROKEN = """\
X:1
T:Broken Hornpipe
M:4/4
L:1/0
K:D
ABcd efga|
"""


@pytest.fixture
def folk_root(tmp_path):
    """A folder laid out like music21's corpus, with three of the collections."""
    files = {
        "ryansMammoth/TestReel.abc": REEL,
        "ryansMammoth/SligoWaltz.abc": WALTZ,
        "ryansMammoth/BrokenHornpipe.abc": BROKEN,
        "ryansMammoth/notes.txt": "not a tune book, ignored",
        "oneills1850/0001-0003.abc": BOOK,
        "essenFolksong/ballad.abc": SONGS,
    }
    root = tmp_path / "m21corpus"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def build(data_dir, folk_root, **options):
    options = {"progress": False, "echo": False, "jobs": 1, "non_commercial": True, **options}
    return build_corpus(data_dir, sources=("folk",), folk_root=folk_root, **options)


def manifest(data_dir) -> dict[str, dict]:
    return {e["id"]: e for e in read_manifest(data_dir / "corpus" / "manifest.jsonl")}


def test_one_piece_per_tune_labelled_folk(tmp_path, folk_root):
    report = build(tmp_path / "data", folk_root)
    entries = manifest(tmp_path / "data")
    assert {i: e["title"] for i, e in entries.items()} == {
        "folk/essen-ballad-1": "Graf und Nonne",
        "folk/essen-ballad-2": "Graf und Nonne",  # same title, still its own piece
        "folk/oneills-0001-0003-1": "Jig of the Test",
        "folk/oneills-0001-0003-2": "Air of the Test",
        "folk/oneills-0001-0003-3": "March of the Test",
        "folk/ryans-sligowaltz": "Sligo Waltz",
        "folk/ryans-testreel": "The Test Reel",
    }
    assert report.added == 7
    assert {(e["composer"], e["game"], e["source_type"]) for e in entries.values()} == {("folk", None, "folk")}
    assert entries["folk/oneills-0001-0003-2"]["source"] == "music21:oneills1850/0001-0003.abc"
    assert entries["folk/oneills-0001-0003-2"]["path"] == "oneills1850/0001-0003.abc"
    assert entries["folk/ryans-testreel"]["licence"] == folk.PUBLIC_DOMAIN
    assert "non-commercial" in entries["folk/essen-ballad-1"]["licence"]


def test_tunes_keep_their_metre_and_tempo(tmp_path, folk_root):
    build(tmp_path, folk_root)
    entries = manifest(tmp_path)
    jig, air, march = (entries[f"folk/oneills-0001-0003-{n}"] for n in (1, 2, 3))
    assert (jig["time_signature"], jig["frames_per_bar"], jig["tempo"]) == ("6/8", 12, 180.0)  # dotted quarter 120
    assert (air["time_signature"], air["frames_per_bar"]) == ("3/4", 12)
    assert (march["time_signature"], march["frames_per_bar"]) == ("2/4", 8)
    assert entries["folk/ryans-sligowaltz"]["time_signature"] == "3/4"
    assert entries["folk/ryans-testreel"]["time_signature"] == "4/4"
    # The header's L:1/4 reached the air: a pickup bar and 4 bars of 3/4 (with ABC's
    # default L:1/8 it would be half as long).
    assert air["bars"] == 5
    # Tunes without Q: get music21_io's default tempo.
    assert air["tempo"] == 96.0


def test_second_build_does_nothing(tmp_path, folk_root):
    first = build(tmp_path, folk_root)
    before = (tmp_path / "corpus/manifest.jsonl").read_bytes()
    again = build(tmp_path, folk_root)
    assert first.units_done == 5
    assert again.nothing_to_do and again.added == 0 and again.units_skipped == 5
    assert again.warnings == []  # the broken book was named once, and is remembered
    assert (tmp_path / "corpus/manifest.jsonl").read_bytes() == before


def test_broken_book_is_named_and_skipped(tmp_path, folk_root):
    report = build(tmp_path, folk_root)
    (broken,) = [w for w in report.warnings if "ryansMammoth/BrokenHornpipe.abc" in w]
    assert "Broken Hornpipe" in broken and "ZeroDivisionError" in broken
    assert not any("BrokenHornpipe" in e["path"] for e in manifest(tmp_path).values())
    state = json.loads((tmp_path / "corpus/state.json").read_text())
    assert state["units"]["folk:ryansMammoth/BrokenHornpipe.abc"]["ids"] == []
    # One bad tune in a book costs only itself, and is named.
    (partial,) = [w for w in report.warnings if "essenFolksong/ballad.abc" in w]
    assert "1 of 3 tunes" in partial and "X:3 'Kaputt'" in partial
    assert state["units"]["folk:essenFolksong/ballad.abc"]["ids"] == ["folk/essen-ballad-1", "folk/essen-ballad-2"]


def test_changed_and_removed_books(tmp_path, folk_root):
    build(tmp_path, folk_root)
    (folk_root / "ryansMammoth/SligoWaltz.abc").unlink()
    (folk_root / "oneills1850/0001-0003.abc").write_text(BOOK.split("X:3")[0])
    report = build(tmp_path, folk_root)
    entries = manifest(tmp_path)
    assert "folk/ryans-sligowaltz" not in entries
    oneills = sorted(i for i in entries if i.startswith("folk/oneills"))
    assert oneills == ["folk/oneills-0001-0003-1", "folk/oneills-0001-0003-2"]
    assert (report.units_done, report.removed, report.added) == (1, 4, 2)


def test_non_commercial_collections_are_left_out_unless_asked_for(tmp_path, folk_root):
    build(tmp_path, folk_root, non_commercial=False)
    ids = set(manifest(tmp_path))
    assert ids and not any(i.startswith("folk/essen-") for i in ids)  # the Essen songs: non-commercial only
    build(tmp_path, folk_root, non_commercial=True)
    assert {"folk/essen-ballad-1", "folk/essen-ballad-2"} <= set(manifest(tmp_path))


def test_only_folk_and_other_labels(tmp_path, folk_root):
    assert build(tmp_path, folk_root, only=("folk",)).added == 7
    assert build(tmp_path / "other", folk_root, only=("bach",)).added == 0


def test_cli_builds_the_folk_source_in_a_pool(tmp_path, folk_root, monkeypatch):
    monkeypatch.setattr(folk, "music21_corpus_root", lambda: folk_root)
    args = ["build", "--data", str(tmp_path), "--source", "folk", "--jobs", "2", "--non-commercial"]
    result = CliRunner().invoke(corpus, args)
    assert result.exit_code == 0, result.output
    assert "corpus: 7 pieces added" in result.output
    assert len(manifest(tmp_path)) == 7
    again = CliRunner().invoke(corpus, args)
    assert "nothing to do" in again.output


def test_split_tunes_copies_the_file_header():
    tunes = folk.split_tunes(BOOK)
    assert [ref for ref, _ in tunes] == ["1", "2", "3"]
    _, air = tunes[1]
    assert air.splitlines()[:3] == ["X:2", "L:1/4", "T:Air of the Test"]
    assert folk.split_tunes("T:No number\nK:C\nCDE|\n") == [("1", "T:No number\nK:C\nCDE|\n")]
    assert folk.split_tunes("\n \n") == []
    assert folk.tune_title(air) == "Air of the Test" and folk.tune_title("X:1\nK:C\n") is None


def test_latin1_books_are_read():
    assert folk.decode_abc("T:Grüß Gott".encode("latin-1")) == "T:Grüß Gott"
    assert folk.decode_abc("T:Grüß Gott".encode()) == "T:Grüß Gott"
