"""Debian packages as a source, without apt or network: hand-made .debs and trees."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile

import pytest

from composer.music import tokens as T
from composer.corpus import debian
from composer.corpus.build import build_corpus
from composer.corpus.store import read_manifest
from composer.corpus.wad import build_wad
from composer.music.grid import Piece
from composer.music.midi_io import to_midi

DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Example

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: data/music/theme.*
Copyright: 2020 Composer
License: CC-BY-SA-3.0

Files: debian/*
Copyright: 2021 Packager
License: Expat

License: GPL-2+
 This program is free software.
"""


def tiny_midi(pitch: int = 60) -> bytes:
    piece = Piece.empty(2)
    piece.grid[::4, T.VOICE_INDEX["lead"]] = T.onset(pitch)
    piece.grid[::8, T.VOICE_INDEX["bass"]] = T.onset(pitch - 24)
    return to_midi(piece)


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_deb(package: str, version: str, files: dict[str, bytes]) -> bytes:
    """A minimal .deb: an ar archive of debian-binary, control.tar.xz and data.tar.xz."""
    control = f"Package: {package}\nVersion: {version}\nArchitecture: all\nDescription: test\n".encode()
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", _tar_xz({"control": control})),
        ("data.tar.xz", _tar_xz(files)),
    ]
    out = b"!<arch>\n"
    for name, data in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


@pytest.fixture
def debs(tmp_path):
    """A folder of three .debs: a game package, Freedoom (WADs) and PianoBooster (foreign)."""
    folder = tmp_path / "debs"
    folder.mkdir()
    simutrans = {
        "usr/share/games/simutrans/music/01-Theme.mid": tiny_midi(60),
        "usr/share/games/simutrans/music/02-Broken.mid": b"MThd garbage",
        "usr/share/games/simutrans/music/readme.txt": b"not music",
        "usr/share/doc/simutrans-data/copyright": DEP5.encode(),
    }
    wad1 = build_wad([("D_E1M1", tiny_midi(62)), ("D_INTRO", tiny_midi(64))], magic=b"IWAD")
    wad2 = build_wad([("D_RUNNIN", tiny_midi(65)), ("D_INTRO", tiny_midi(64))], magic=b"IWAD")
    freedoom = {
        "usr/share/games/doom/freedoom1.wad": wad1,
        "usr/share/games/doom/freedoom2.wad": wad2,
        "usr/share/doc/freedoom/copyright": DEP5.encode(),
    }
    pianobooster = {"usr/share/doc/pianobooster/courses/01-Greensleeves.mid.gz": gzip.compress(tiny_midi(67))}
    (folder / "simutrans-data_1.0-1_all.deb").write_bytes(make_deb("simutrans-data", "1.0-1", simutrans))
    (folder / "freedoom_0.12-1_all.deb").write_bytes(make_deb("freedoom", "0.12-1", freedoom))
    (folder / "pianobooster_1.0-3_amd64.deb").write_bytes(make_deb("pianobooster", "1.0-3", pianobooster))
    return folder


def build(data_dir, **options):
    return build_corpus(data_dir, sources=("debian",), progress=False, echo=False, **options)


def test_deb_control_and_python_unpack(debs, tmp_path, monkeypatch):
    deb = debs / "simutrans-data_1.0-1_all.deb"
    assert debian.deb_control(deb)["Version"] == "1.0-1"
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)  # no dpkg-deb: unpack in Python
    debian.unpack_deb(deb, tmp_path / "out")
    assert (tmp_path / "out/usr/share/games/simutrans/music/01-Theme.mid").read_bytes() == tiny_midi(60)


def test_build_from_a_folder_of_debs(debs, tmp_path):
    data = tmp_path / "data"
    report = build(data, only=("simutrans", "doom", "pianobooster"), from_dir=debs)
    entries = {e["id"]: e for e in read_manifest(data / "corpus" / "manifest.jsonl")}
    assert sorted(entries) == ["doom/d_e1m1", "doom/d_intro", "doom/d_runnin", "simutrans/01-theme"]
    theme = entries["simutrans/01-theme"]
    assert theme["game"] == "simutrans" and theme["package"] == "simutrans-data" and theme["version"] == "1.0-1"
    assert theme["path"] == "usr/share/games/simutrans/music/01-Theme.mid"
    assert theme["licence"] == "GPL-2+"
    assert entries["doom/d_runnin"]["source"] == "freedoom:usr/share/games/doom/freedoom2.wad#D_RUNNIN"
    assert [w for w in report.warnings if "02-Broken.mid" in w], report.warnings
    state = json.loads((data / "corpus/state.json").read_text())
    assert state["units"]["deb:freedoom"]["info"]["identical_lumps_dropped"] == 1
    # PianoBooster is remix material, not training data.
    index = [json.loads(l) for l in (data / "remix_inputs/pianobooster/index.jsonl").read_text().splitlines()]
    assert [e["file"] for e in index] == ["01-greensleeves.mid"]
    assert (data / "remix_inputs/pianobooster/01-greensleeves.mid").read_bytes() == tiny_midi(67)
    assert not any(e.get("package") == "pianobooster" for e in entries.values())
    again = build(data, only=("simutrans", "doom", "pianobooster"), from_dir=debs)
    assert again.nothing_to_do and again.added == 0


def test_build_from_an_unpacked_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(debian, "apt_get_available", lambda: False)  # the other arcade games: not fetched
    tree = tmp_path / "tree"
    music = tree / "usr/share/games/pinball/hurd"
    music.mkdir(parents=True)
    (music / "intro.mid").write_bytes(tiny_midi(60))
    doc = tree / "usr/share/doc/pinball-table-hurd-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(DEP5)
    (doc / "changelog.Debian.gz").write_bytes(gzip.compress(b"pinball-table-hurd-data (0.0.2-2) unstable; urgency=low\n"))
    report = build(tmp_path / "data", only=("arcade",), from_dir=tree)
    (entry,) = read_manifest(tmp_path / "data/corpus/manifest.jsonl")
    assert report.added == 1
    assert (entry["id"], entry["version"], entry["licence"]) == ("arcade/intro", "0.0.2-2", "GPL-2+")
    assert (entry["game"], entry["package"]) == ("arcade", "pinball-table-hurd-data")
    assert any("kobodeluxe-data" in w and "--from DIR" in w for w in report.warnings), report.warnings


def test_missing_apt_get_says_to_use_from(tmp_path, monkeypatch):
    monkeypatch.setattr(debian, "apt_get_available", lambda: False)
    report = build(tmp_path, only=("arcade",))
    assert report.added == 0
    assert any("apt-get is not available" in w and "--from DIR" in w for w in report.warnings)


def test_unknown_package_says_to_run_apt_get_update(tmp_path, monkeypatch):
    monkeypatch.setattr(debian, "apt_get_available", lambda: True)

    def fake_run(args, **kwargs):
        assert args[:2] == ["apt-get", "download"]
        return subprocess.CompletedProcess(args, 100, "", f"E: Unable to locate package {args[2]}\n")

    monkeypatch.setattr(debian.subprocess, "run", fake_run)
    report = build(tmp_path, only=("arcade",))
    assert any("kobodeluxe-data" in w and "apt-get update" in w for w in report.warnings), report.warnings


def test_licence_of_a_file_from_dep5_and_free_text():
    assert debian.licence_for(DEP5, "usr/share/games/x/data/music/theme.mid") == "CC-BY-SA-3.0"
    assert debian.licence_for(DEP5, "usr/share/games/x/other.mid") == "GPL-2+"
    custom = DEP5.replace("License: GPL-2+", "License: game-license", 1).replace(
        "License: GPL-2+\n This", "License: game-license\n Redistribution and use in source and binary forms. This"
    )
    assert debian.licence_for(custom, "usr/x.mid") == "game-license (BSD-3-Clause-style)"
    free = (
        "License:\n    Permission is granted to anyone to use this software for any purpose,\n"
        "Packaging is licensed under the GPL, either version\n3, or (at your option) any later version.\n"
    )
    assert debian.licence_for(free, "usr/x.mid") == "Zlib / GPL-3+ (mixed, see copyright)"
    assert debian.licence_for("nothing useful", "x.mid") == "unknown (see copyright file)"


def test_games_with_one_or_two_tracks_share_the_arcade_label():
    labels = {p.package: p.label for p in debian.GAME_PACKAGES}
    small = ("kobodeluxe-data", "pinball-table-hurd-data", "liquidwar-data", "pangzero")
    assert {labels[p] for p in small} == {debian.ARCADE}
    assert not {"kobo", "pinball", "liquidwar", "pangzero"} & set(labels.values())
