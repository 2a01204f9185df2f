"""The tracker source: modules found in archives, played by libxmp and reduced to the grid.

The archive tests need nothing. The others need libxmp, which they take as `corpus build`
does (the system's, else Debian's libxmp4 package fetched with apt-get); the last ones also
read the real game packages, fetched into the corpus cache (MOZART_TEST_CACHE, default
data/cache). Without apt-get they are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from composer.music import tokens as T
from composer.corpus import archives, debian
from composer.corpus.build import build_corpus
from composer.corpus.module_grid import drum_from_name, song_piece, streams_of
from composer.corpus.modules import read_module
from composer.corpus.sources.tracker import TrackerModules, ensure_libxmp

CACHE = Path(os.environ.get("MOZART_TEST_CACHE", Path(__file__).resolve().parents[1] / "data" / "cache"))
SEED = int(os.environ.get("MOZART_TRACKER_SEED", "22"))


# -- archives ---------------------------------------------------------------------------
def _literal_lzss(data: bytes) -> bytes:
    """Allegro LZSS with every byte a literal (a flag byte 0xFF before each eight)."""
    out = bytearray()
    for i in range(0, len(data), 8):
        out.append(0xFF)
        out += data[i : i + 8]
    return bytes(out)


def _datafile(objects: list[tuple[bytes, str, bytes, bool]]) -> bytes:
    blob = bytearray(b"slh.ALL." + struct.pack(">i", len(objects)))
    for kind, name, data, packed in objects:
        encoded = name.encode()
        blob += b"propNAME" + struct.pack(">i", len(encoded)) + encoded
        stored = _literal_lzss(data) if packed else data
        blob += kind + struct.pack(">ii", len(stored), -len(data) if packed else len(data)) + stored
    return bytes(blob)


def test_lzss_unpacks_literals_and_references():
    assert archives.lzss_unpack(_literal_lzss(b"Extended Module: x")) == b"Extended Module: x"
    # "abcabcabc": three literals, then a reference to ring position 4078 (where the first
    # literal went), length 3 + 3 = 6; the flag byte's bits 0-2 are literals, bit 3 not.
    stream = bytes([0b0000_0111]) + b"abc" + bytes([4078 & 0xFF, ((4078 >> 4) & 0xF0) | 3])
    assert archives.lzss_unpack(stream) == b"abcabcabc"


def test_allegro_datafile_modules_packed_or_not_and_nothing_else():
    blob = _datafile([
        (b"BMP ", "title", b"\x00" * 50, True),
        (b"XM  ", "M0_XM", b"Extended Module: one", False),
        (b"IT  ", "musica", b"IMPM two", True),
    ])
    found = archives.modules_in("kball/music_l.dat", blob)
    assert found == [("kball/music_l.dat#M0_XM.xm", b"Extended Module: one"),
                     ("kball/music_l.dat#musica.it", b"IMPM two")]


def test_a_cut_datafile_is_an_archive_error():
    blob = _datafile([(b"XM  ", "M0_XM", b"Extended Module: one", False)])
    with pytest.raises(archives.ArchiveError):
        archives.modules_in("music.dat", blob[:-5])


def test_jumpnbump_archive_modules():
    entries = [("jump.mod", b"M.K. data"), ("level.pcx", b"picture")]
    header = struct.pack("<i", len(entries))
    offset = 4 + 20 * len(entries)
    body = b""
    for name, data in entries:
        header += name.encode().ljust(12, b"\0") + struct.pack("<ii", offset + len(body), len(data))
        body += data
    assert archives.modules_in("jumpbump.dat", header + body) == [("jumpbump.dat#jump.mod", b"M.K. data")]
    assert archives.modules_in("notes.txt", b"anything") == []


def test_drum_names():
    assert drum_from_name("BassDrum 6") == drum_from_name("bdrum") == drum_from_name("HardBaseDrum") == "kick"
    assert drum_from_name("Closed Hihat") == "hat" and drum_from_name("openhihat") == "open_hat"
    assert drum_from_name("909 Claps") == "snare" and drum_from_name("Crash") == "cymbal"
    assert drum_from_name("Fingered Bass") is None and drum_from_name("Strings") is None


# -- a module made here, played by libxmp -------------------------------------------------
@pytest.fixture(scope="module")
def libxmp_loaded():
    try:
        ensure_libxmp(CACHE.parent)
    except Exception as e:  # no libxmp, no apt-get, no network
        pytest.skip(f"libxmp is not available here and could not be fetched ({e})")


PERIODS = {48: 856, 52: 678, 55: 570, 60: 428, 64: 339, 67: 285, 72: 214}  # ProTracker periods by pitch


def _mod(rows: list[dict[int, tuple[int, int, int, int]]]) -> bytes:
    """A 4-channel ProTracker module: rows of {channel: (pitch, sample, effect, param)}.
    Sample 1 a looped square wave (a lead), 2 the same (a bass), 3 a looped pad, 4 an
    unlooped noise burst named "kick"."""
    square = (b"\x64" * 16 + b"\x9c" * 16)
    rng = np.random.default_rng(0)
    kick = (rng.uniform(-100, 100, 400) * np.linspace(1, 0, 400)).astype(np.int8).tobytes()
    samples = [("lead", square, True), ("bass", square, True), ("pad", square * 2, True), ("kick", kick, False)]
    out = bytearray(b"test module".ljust(20, b"\0"))
    for k in range(31):
        if k < len(samples):
            name, data, looped = samples[k]
            words = len(data) // 2
            out += name.encode().ljust(22, b"\0") + struct.pack(">HBBHH", words, 0, 64, 0, words if looped else 1)
        else:
            out += b"\0" * 22 + struct.pack(">HBBHH", 0, 0, 0, 0, 1)
    n_patterns = len(rows) // 64
    out += bytes([n_patterns, 127]) + bytes(range(n_patterns)).ljust(128, b"\0") + b"M.K."
    for row in rows:
        for channel in range(4):
            pitch, sample, effect, param = row.get(channel, (0, 0, 0, 0))
            period = PERIODS.get(pitch, 0)
            out += bytes([(sample & 0xF0) | (period >> 8), period & 0xFF, ((sample & 0xF) << 4) | effect, param])
    for _, data, _ in samples:
        out += data
    return bytes(out)


def _song_rows() -> list[dict]:
    """Three patterns at speed 3 (a row is a 32nd at 125 BPM): the lead every 4 rows, the
    bass every 16, the kick every 8, a pad chord spelled by an arpeggio (+4, +7) every 32,
    and one lead note delayed by 2 of its row's 3 ticks."""
    rows = [dict() for _ in range(3 * 64)]
    rows[0][3] = (0, 0, 0xF, 3)
    for r in range(0, len(rows), 4):
        rows[r][0] = (72 if (r // 4) % 2 else 67, 1, 0, 0)
    for r in range(0, len(rows), 16):
        rows[r][1] = (48, 2, 0, 0)
    for r in range(0, len(rows), 32):
        rows[r][2] = (60, 3, 0x0, 0x47)
        for held in range(r + 1, r + 32):
            rows[held][2] = (0, 0, 0x0, 0x47)  # the arpeggio goes on while the note sounds
    for r in range(8, len(rows), 8):
        rows[r][3] = (60, 4, 0, 0)
    rows[0][3] = (60, 4, 0xF, 3)  # the first kick also sets speed 3
    rows[44][0] = (72, 1, 0xE, 0xD2)  # EDx: note delay of 2 ticks
    return rows


def test_a_module_becomes_a_grid_with_16ths_roles_drums_and_chords(libxmp_loaded):
    module = read_module(_mod(_song_rows()), "test.mod")
    assert len(module.songs) == 1
    song = module.songs[0]
    assert song.rows == 192  # played once: the end does not loop back
    lead_rows = song.notes.row[song.notes.channel == 0]
    assert np.any(np.isclose(lead_rows, 44 + 2 / 3)) and not np.any(np.isclose(lead_rows, 44))

    piece = song_piece(module, song, game="test", title="test")
    assert piece.extra["rows_per_16th"] == 2.0  # speed 3: two rows make a 16th
    assert abs(piece.tempo - 125.0) < 0.5 and piece.time_signature == (4, 4)
    assert piece.n_frames == 96  # 192 rows of 32nds: 6 bars of 16ths
    grid = piece.grid
    lead, counter, harmony, bass, drums = range(5)
    lead_onsets = np.flatnonzero(T.is_onset(grid[:, lead]))
    assert lead_onsets.tolist() == list(range(0, 96, 2))  # the delayed note rounds back to its 16th
    assert set(T.pitch_of(grid[lead_onsets, lead]).tolist()) == {67, 72}
    bass_onsets = np.flatnonzero(T.is_onset(grid[:, bass]))
    assert bass_onsets.tolist() == list(range(0, 96, 8)) and set(T.pitch_of(grid[bass_onsets, bass])) == {48}
    kicks = np.flatnonzero(grid[:, drums] == T.drum_token("kick"))
    assert kicks.tolist() == list(range(0, 96, 4))
    pad = np.flatnonzero(T.is_onset(grid[:, counter]))
    assert pad.tolist() == list(range(0, 96, 16)) and set(T.pitch_of(grid[pad, counter])) == {60}
    chord = T.pitch_of(grid[pad, harmony])  # the arpeggio's +4 spelled in the harmony voice
    assert set(chord.tolist()) <= {64, 67} and len(chord) == len(pad)


def test_a_file_libxmp_cannot_read_is_a_clear_error(libxmp_loaded):
    from composer.corpus.modules import ModuleError

    with pytest.raises(ModuleError, match="not a module"):
        read_module(b"this is not a module at all" * 10, "junk.xm")


# -- the real game music -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tracker_debs(libxmp_loaded):
    """Every tracker package's .deb, from the corpus cache or fetched into it."""
    folder = CACHE / "debs"
    found = {}
    for spec in debian.TRACKER_PACKAGES:
        debs = debian.find_debs(folder, spec.package)
        if not debs:
            if not debian.apt_get_available():
                pytest.skip("the game packages are not cached and apt-get is not available to fetch them")
            try:
                debs = [debian.apt_download(spec.package, folder)]
            except debian.AptError as e:
                pytest.skip(str(e))
        found[spec.package] = debs[-1]
    return found


@pytest.fixture(scope="module")
def random_modules(tracker_debs, tmp_path_factory):
    """20 modules chosen at random (MOZART_TRACKER_SEED) among every package's."""
    root = tmp_path_factory.mktemp("tracker")
    every = []
    for spec in debian.TRACKER_PACKAGES:
        tree = root / spec.package
        debian.unpack_deb(tracker_debs[spec.package], tree)
        for path in debian.package_files(tree, spec):
            every += [(spec.package, name, data) for name, data in archives.modules_in(path.name, path.read_bytes())]
    assert len(every) >= 230
    return random.Random(SEED).sample(every, 20)


@pytest.mark.slow
def test_grid_onsets_and_drums_agree_with_the_modules_own_notes(random_modules):
    """On 20 random modules: the reader's notes, placed by the tracker's own clock (seconds
    to rows by the rows' start times, rows to 16ths), have a grid onset within one 16th
    (>= 95 %), and the hits of drum-named instruments land in the drum voice (>= 90 %)."""
    matched = total = drum_matched = drum_total = 0
    report = []
    for package, name, data in random_modules:
        module = read_module(data, name)
        for song in module.songs:
            piece = song_piece(module, song)
            if piece is None:
                continue
            bar_seconds = piece.seconds / piece.n_bars  # the piece ends on a bar line after the song
            assert -0.01 * song.seconds <= piece.seconds - song.seconds < bar_seconds + 0.01 * song.seconds, name
            notes, grid, r = song.notes, piece.grid, piece.extra["rows_per_16th"]
            rows = np.interp(notes.start, song.row_start, np.arange(len(song.row_start)))
            frames = np.rint(rows / r).astype(int)
            onsets = np.zeros(len(grid) + 2, bool)
            onsets[: len(grid)] = np.any(T.is_onset(grid[:, :4]), axis=1)
            hits = np.zeros(len(grid) + 2, bool)
            hits[: len(grid)] = grid[:, T.DRUM_VOICE] != T.REST

            def near(mask, f):
                return mask[f] | mask[np.maximum(f - 1, 0)] | mask[f + 1]

            streams = streams_of(module, song)
            drums = np.concatenate([s.index for s in streams if s.drum] + [np.zeros(0, int)]).astype(int)
            named = np.concatenate([s.index for s in streams if s.drum and drum_from_name(
                module.instruments[s.instrument] if s.instrument < len(module.instruments) else "")]
                + [np.zeros(0, int)]).astype(int)
            pitched = np.setdiff1d(np.arange(len(notes)), drums)
            f = frames[pitched][frames[pitched] < len(grid)]
            matched += int(near(onsets, f).sum())
            total += len(f)
            f = frames[named][frames[named] < len(grid)]
            drum_matched += int(near(hits, f).sum())
            drum_total += len(f)
            report.append(f"{package}:{name}")
    assert total > 1000 and matched / total >= 0.95, (matched / total, report)
    if drum_total:
        assert drum_matched / drum_total >= 0.90, (drum_matched / drum_total, report)


@pytest.mark.slow
def test_corpus_build_records_licences_and_a_second_build_does_nothing(tracker_debs, tmp_path, monkeypatch):
    chosen = ("gl-117-data", "monsterz-data", "vor")
    monkeypatch.setattr(TrackerModules, "packages", tuple(debian.PACKAGES_BY_NAME[p] for p in chosen))
    folder = tmp_path / "debs"
    folder.mkdir()
    for package in chosen:
        (folder / tracker_debs[package].name).symlink_to(tracker_debs[package])
    data = tmp_path / "data"
    report = build_corpus(data, sources=("tracker",), only=("gl117", debian.TRACKER), from_dir=folder,
                          progress=False, echo=False)
    entries = [json.loads(line) for line in (data / "corpus" / "manifest.jsonl").read_text().splitlines()]
    by_package = {}
    for e in entries:
        by_package.setdefault(e["package"], []).append(e)
    assert set(by_package) == {"gl-117-data", "monsterz-data", "vor"}
    assert all(e["licence"] and "unknown" not in e["licence"] and e["source_type"] == "tracker" for e in entries)
    assert by_package["monsterz-data"][0]["licence"] == "public-domain"
    assert all(e["game"] == "gl117" for e in by_package["gl-117-data"]) and len(by_package["gl-117-data"]) == 8
    assert {e["game"] for e in by_package["vor"]} == {debian.TRACKER}
    assert report.added == len(entries) and not report.warnings
    again = build_corpus(data, sources=("tracker",), only=("gl117", debian.TRACKER), from_dir=folder,
                         progress=False, echo=False)
    assert again.nothing_to_do
