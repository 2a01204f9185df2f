"""Split (by piece, stratified per label) and the encoded arrays the trainer loads."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from composer.music import tokens as T
from composer.corpus.encoded import FORMAT_VERSION, encode_corpus, load_meta, load_split
from composer.corpus.split import SPLITS, split_ids, stable_hash
from composer.music.grid import Piece
from tests.conftest import store_pieces

# label -> number of pieces: every case of the split rule
SIZES = {("game", "doom"): 25, ("game", "dink"): 3, ("game", "kobo"): 2, ("game", "pangzero"): 1, ("composer", "bach"): 12, ("composer", "haydn"): 2}


def fake_piece(n: int, kind: str, label: str) -> Piece:
    ts = (3, 4) if n % 3 == 0 else (4, 4)
    piece = Piece.empty(2 + n % 4, ts, title=f"{label} {n}", tempo=90.0 + n, **{kind: label})
    piece.grid[:: 2 + n % 3, T.VOICE_INDEX["lead"]] = T.onset(50 + n % 30)
    piece.grid[::4, T.DRUM_VOICE] = T.drum_token("kick")
    return piece


@pytest.fixture
def data_dir(tmp_path):
    labels = [key for key, count in SIZES.items() for _ in range(count)]
    store_pieces(tmp_path, [fake_piece(n, kind, label) for n, (kind, label) in enumerate(labels, 1)])
    return tmp_path


def entries_of(data_dir):
    return [json.loads(l) for l in (data_dir / "corpus/manifest.jsonl").read_text().splitlines()]


def test_split_rules_per_label(data_dir):
    entries = entries_of(data_dir)
    split, notes = split_ids(entries)
    where = {i: name for name in SPLITS for i in split[name]}
    assert sorted(where) == sorted(e["id"] for e in entries)  # every piece in exactly one split
    assert sum(len(v) for v in split.values()) == len(entries)
    count = lambda label, name: sum(1 for i, s in where.items() if i.startswith(label + "/") and s == name)
    assert (count("doom", "valid"), count("doom", "test"), count("doom", "train")) == (2, 2, 21)  # ~10 % each
    assert (count("dink", "valid"), count("dink", "test"), count("dink", "train")) == (1, 1, 1)
    assert (count("kobo", "valid"), count("kobo", "test"), count("kobo", "train")) == (1, 0, 1)
    assert (count("pangzero", "train"), count("pangzero", "valid")) == (1, 0)
    assert notes == ["game:pangzero has only 1 piece: train only, it cannot be validated."]
    for (kind, label), size in SIZES.items():
        if size >= 2:
            assert count(label, "valid") >= 1, label


def test_split_is_deterministic_and_order_free(data_dir):
    entries = entries_of(data_dir)
    shuffled = entries[:]
    random.Random(1).shuffle(shuffled)
    assert split_ids(entries) == split_ids(shuffled)
    assert stable_hash("doom/p001") == 0x3d95e0ca3c104cd5  # sha256, not the salted hash()


def test_labels_spread_over_groups_still_reach_valid():
    entries = [
        {"id": "a", "game": "zelda", "composer": "bach"},
        {"id": "b", "game": None, "composer": "bach"},
        {"id": "c", "game": "zelda", "composer": None},
    ]
    split, notes = split_ids(entries)
    assert len(notes) == 3  # three groups of one piece
    for label in ("zelda", "bach"):
        assert any(e["id"] in split["valid"] for e in entries if label in (e["game"], e["composer"])), label
    assert split["train"]  # something is still left to train on


def test_encoded_arrays(data_dir):
    meta, _ = encode_corpus(data_dir)
    assert meta["format_version"] == FORMAT_VERSION == load_meta(data_dir)["format_version"]
    assert meta["games"] == ["dink", "doom", "kobo", "pangzero"] and meta["composers"] == ["bach", "haydn"]
    assert meta["counts"]["games"]["doom"]["pieces"] == 25
    by_id = {e["id"]: e for e in entries_of(data_dir)}
    seen = set()
    for name in SPLITS:
        s = load_split(data_dir, name)
        assert s.ids == meta["split"][name] and len(s) == meta["pieces"][name]
        assert s.grid.dtype == np.uint8 and s.grid.shape == (s.n_frames, T.N_VOICES) == (meta["frames"][name], 5)
        assert s.offsets.dtype == np.int64 and s.offsets[0] == 0 and np.all(np.diff(s.offsets) > 0)
        assert s.game.dtype == s.composer.dtype == s.frames_per_bar.dtype == np.int16
        assert not seen & set(s.ids)  # no piece, hence no window of a piece, in two splits
        seen |= set(s.ids)
        for i, piece_id in enumerate(s.ids):
            stored = Piece.from_bytes((data_dir / "corpus" / by_id[piece_id]["file"]).read_bytes())
            piece = s.piece(i)
            assert np.array_equal(piece.grid, stored.grid) and np.array_equal(s.piece_grid(i), stored.grid)
            assert (piece.game, piece.composer) == (stored.game, stored.composer)
            assert piece.time_signature == stored.time_signature and piece.tempo == stored.tempo
            assert s.frames_per_bar[i] == stored.frames_per_bar
    assert seen == set(by_id)


def test_two_encodes_are_identical(data_dir, tmp_path):
    encode_corpus(data_dir)
    first = {name: load_split(data_dir, name) for name in SPLITS}
    meta, notes = encode_corpus(data_dir)
    assert notes and "nothing to do" in notes[0]
    encode_corpus(data_dir, force=True)
    for name in SPLITS:
        again = load_split(data_dir, name)
        for field in ("grid", "offsets", "game", "composer", "frames_per_bar", "time_signature", "tempo"):
            assert np.array_equal(getattr(first[name], field), getattr(again, field)), (name, field)
        assert first[name].ids == again.ids


def test_load_split_names_the_problem(tmp_path):
    with pytest.raises(Exception, match="corpus encode"):
        load_split(tmp_path, "train")
    with pytest.raises(ValueError, match="received 'validation'"):
        load_split(tmp_path, "validation")
