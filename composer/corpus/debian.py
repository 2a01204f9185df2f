"""Debian packages as a music source: which packages, how to fetch, unpack and license them.

Everything here works without root: ``apt-get download`` fetches a ``.deb`` into the
current directory, ``dpkg-deb -x`` unpacks it anywhere. Where ``dpkg-deb`` is missing the
``.deb`` (an ``ar`` archive holding ``control.tar.*`` and ``data.tar.*``) is unpacked in
Python. A folder of already-downloaded ``.deb`` files, or a tree they were unpacked into,
serves machines without ``apt-get`` (``corpus build --from DIR``).
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from composer.corpus.archives import ARCHIVE_SUFFIXES, MODULE_SUFFIXES
from composer.errors import MozartError


MIDI_SUFFIXES = (".mid", ".midi", ".mid.gz", ".midi.gz")


@dataclass(frozen=True)
class GamePackage:
    package: str  # Debian package name
    label: str  # game label in the corpus ("" for foreign material)
    game: str  # the game's name, for people
    dirs: tuple[str, ...]  # where its music is installed, relative to the root
    wad: bool = False  # music lives in WAD lumps (Freedoom)
    suffixes: tuple[str, ...] = MIDI_SUFFIXES  # the names of its music files end so


# The game music the corpus is built from (see DESIGN.md, "Data that can be had").
# Games with only one or two tracks (Kobo Deluxe, the Hurd pinball table, Liquid War,
# Pang Zero) cannot be learnt as styles of their own (a style of one piece is that piece
# imitated, and it cannot be validated): they share the broader label ``ARCADE``.
ARCADE = "arcade"
GAME_PACKAGES: tuple[GamePackage, ...] = (
    GamePackage("freedoom", "doom", "Freedoom", ("usr/share/games/doom",), wad=True),
    GamePackage("simutrans-data", "simutrans", "Simutrans", ("usr/share/games/simutrans",)),
    GamePackage("openttd-openmsx", "openttd", "OpenTTD (OpenMSX)", ("usr/share/games/openttd",)),
    GamePackage("freedink-data", "dink", "Dink Smallwood (FreeDink)", ("usr/share/games/dink",)),
    GamePackage("planetblupi-music-midi", "blupi", "Planet Blupi", ("usr/share/planetblupi",)),
    GamePackage("kobodeluxe-data", ARCADE, "Kobo Deluxe", ("usr/share/kobo-deluxe",)),
    GamePackage("pinball-table-hurd-data", ARCADE, "Emilia Pinball: Hurd table", ("usr/share/games/pinball",)),
    GamePackage("liquidwar-data", ARCADE, "Liquid War", ("usr/share/games/liquidwar",)),
    GamePackage("pangzero", ARCADE, "Pang Zero", ("usr/share/perl5/auto/share/dist/Games-PangZero",)),
)

# Tracker modules (MOD, XM, S3M, IT) of games whose Debian packages ship their music as
# note data (read by ``composer.corpus.sources.tracker``). A game with eight or more songs
# is a style of its own; the others share ``TRACKER``. Left out: redeclipse-data (one IT in
# an 860 MB package), armagetronad (its ``.mod`` files are 3D models), and the games that
# ship OGG or had their music removed (frozen-bubble's main package, supertux, lbreakout2,
# ltris, xmoto, hedgewars, chromium-bsu, wesnoth).
TRACKER = "tracker"


def _tracker(package: str, label: str, game: str, *dirs: str, archives: bool = False) -> GamePackage:
    suffixes = MODULE_SUFFIXES + ARCHIVE_SUFFIXES if archives else MODULE_SUFFIXES
    return GamePackage(package, label, game, dirs, suffixes=suffixes)


TRACKER_PACKAGES: tuple[GamePackage, ...] = (
    _tracker("ironseed-data", "ironseed", "Ironseed", "usr/share/games/ironseed/sound"),
    _tracker("tecnoballz-data", "tecnoballz", "TecnoballZ", "usr/share/games/tecnoballz/musics"),
    _tracker("pekka-kana-2-data", "pekka", "Pekka Kana 2", "usr/share/games/pekka-kana-2/data/music"),
    _tracker("heroes-sound-tracks", "heroes", "Heroes", "usr/share/games/heroes/mod"),
    _tracker("pingus-data", "pingus", "Pingus", "usr/share/games/pingus/data/music"),
    _tracker("kball-data", "kball", "KBall", "usr/share/games/kball", archives=True),
    _tracker("kraptor-data", "kraptor", "Kraptor", "usr/share/games/kraptor", archives=True),
    _tracker("freedroid-data", "freedroid", "Freedroid", "usr/share/games/freedroid/sound"),
    _tracker("biniax2-data", "biniax", "Biniax 2", "usr/share/games/biniax2/music"),
    _tracker("gl-117-data", "gl117", "GL-117", "usr/share/games/gl-117/music"),
    _tracker("rafkill-data", TRACKER, "Rafkill", "usr/share/games/rafkill/data", "usr/share/games/rafkill/music"),
    _tracker("pachi-data", TRACKER, "Dr. Pachi", "usr/share/pachi/music"),
    _tracker("open-invaders-data", TRACKER, "Open Invaders", "usr/share/open-invaders"),
    _tracker("bomberclone-data", TRACKER, "BomberClone", "usr/share/games/bomberclone/music"),
    _tracker("gemdropx", TRACKER, "Gem Drop X", "usr/share/games/gemdropx/sounds"),
    _tracker("madbomber-data", TRACKER, "Mad Bomber", "usr/share/games/madbomber/music"),
    _tracker("penguin-command", TRACKER, "Penguin Command", "usr/share/games/penguin-command/sound"),
    _tracker("tuxmath-data", TRACKER, "Tux, of Math Command", "usr/share/tuxmath/sounds"),
    _tracker("tuxtype-data", TRACKER, "Tux Typing", "usr/share/tuxtype/sounds"),
    _tracker("bugsquish", TRACKER, "Bug Squish", "usr/share/games/bugsquish/music"),
    _tracker("circuslinux-data", TRACKER, "Circus Linux!", "usr/share/games/circuslinux/data/music"),
    _tracker("njam-data", TRACKER, "Njam", "usr/share/games/njam/data"),
    _tracker("powermanga-data", TRACKER, "Powermanga", "usr/share/games/powermanga/sounds"),
    _tracker("flobopuyo", TRACKER, "FloboPuyo", "usr/share/games/flobopuyo/sfx"),
    _tracker("ri-li-data", TRACKER, "Ri-li", "usr/share/games/ri-li/Ri-li/Sounds"),
    _tracker("tomatoes-data", TRACKER, "I Have No Tomatoes", "usr/share/tomatoes/music"),
    _tracker("gltron", TRACKER, "GLtron", "usr/share/games/gltron/music"),
    _tracker("vodovod", TRACKER, "Vodovod", "usr/share/games/vodovod"),
    _tracker("criticalmass-data", TRACKER, "Critical Mass", "usr/share/games/criticalmass"),
    _tracker("vectoroids", TRACKER, "Vectoroids", "usr/share/games/vectoroids/music"),
    _tracker("fb-music-high", TRACKER, "Frozen Bubble", "usr/share/games/frozen-bubble/snd"),
    _tracker("black-box", TRACKER, "Black Box", "usr/share/black-box/sound"),
    _tracker("monsterz-data", TRACKER, "Monsterz", "usr/share/games/monsterz/sound"),
    _tracker("dodgindiamond2", TRACKER, "Dodgin' Diamond 2", "usr/share/games/dodgindiamond2"),
    _tracker("solarwolf", TRACKER, "SolarWolf", "usr/share/games/solarwolf/data/music"),
    _tracker("gweled", TRACKER, "Gweled", "usr/share/sounds/gweled"),
    _tracker("vor", TRACKER, "VoR", "usr/share/vor"),
    _tracker("ballz-data", TRACKER, "B.A.L.Z.", "usr/share/games/ballz"),
    _tracker("pathogen", TRACKER, "Pathogen Warrior", "usr/share/pathogen"),
    _tracker("ceferino-data", TRACKER, "Don Ceferino Hazana", "usr/share/games/ceferino/music"),
    _tracker("cuyo-data", TRACKER, "Cuyo", "usr/share/games/cuyo/sounds"),
    _tracker("jumpnbump", TRACKER, "Jump 'n Bump", "usr/share/games/jumpnbump", archives=True),
    _tracker("jumpnbump-levels", TRACKER, "Jump 'n Bump levels", "usr/share/games/jumpnbump", archives=True),
)

# Not training data: folk/classical practice tunes, kept as foreign inputs for /remix.
FOREIGN_PACKAGES: tuple[GamePackage, ...] = (
    GamePackage("pianobooster", "", "PianoBooster practice tunes", ("usr/share/doc/pianobooster",)),
)

PACKAGES_BY_NAME = {p.package: p for p in GAME_PACKAGES + FOREIGN_PACKAGES + TRACKER_PACKAGES}


class AptError(MozartError):
    """``apt-get download`` could not fetch a package; the message says what to do."""


# -- fetching ---------------------------------------------------------------------------
def apt_get_available() -> bool:
    return shutil.which("apt-get") is not None


def apt_download(package: str, dest: Path, timeout: float = 600) -> Path:
    """``apt-get download PACKAGE`` into ``dest``; returns the ``.deb`` it wrote."""
    dest.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in dest.glob("*.deb")}
    try:
        run = subprocess.run(
            ["apt-get", "download", package], cwd=dest, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise AptError("apt-get is not installed.") from None
    except subprocess.TimeoutExpired:
        raise AptError(f"apt-get download {package} took longer than {timeout:.0f} s (network?).") from None
    if run.returncode != 0:
        err = (run.stderr or run.stdout).strip().splitlines()
        detail = next((line for line in err if line.startswith("E:")), err[-1] if err else "no output")
        if "Unable to locate package" in detail or "has no installation candidate" in detail:
            raise AptError(
                f"apt-get cannot find {package} ({detail}). The package lists are probably missing or "
                "stale: run `sudo apt-get update` and build again (or pass --from DIR with the .deb)."
            )
        raise AptError(f"apt-get download {package} failed: {detail}")
    debs = sorted(p for p in dest.glob(f"{package}_*.deb") if p.name not in before) or find_debs(dest, package)
    if not debs:
        raise AptError(f"apt-get download {package} reported success but wrote no .deb in {dest}.")
    return debs[-1]


def find_debs(folder: Path, package: str) -> list[Path]:
    """``.deb`` files of ``package`` in ``folder`` (by file name), oldest version first."""
    return sorted(folder.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- .deb archives ----------------------------------------------------------------------
def _ar_members(path: Path) -> dict[str, bytes]:
    data = Path(path).read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise MozartError(f"{Path(path).name} is not a .deb (no ar header).")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return members


def _open_tar(name: str, blob: bytes) -> tarfile.TarFile:
    if name.endswith(".zst"):
        raise MozartError(f"{name} is zstd-compressed; install dpkg-deb (package dpkg) to unpack it.")
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")


def deb_control(path: Path) -> dict[str, str]:
    """The control fields (Package, Version, ...) of a ``.deb``, read in Python."""
    members = _ar_members(path)
    name = next((n for n in members if n.startswith("control.tar")), None)
    if name is None:
        raise MozartError(f"{Path(path).name} has no control archive.")
    with _open_tar(name, members[name]) as tar:
        member = next((m for m in tar.getmembers() if m.name.lstrip("./") == "control"), None)
        if member is None:
            raise MozartError(f"{Path(path).name} has no control file.")
        return parse_control(tar.extractfile(member).read().decode("utf-8", "replace"))


def parse_control(text: str) -> dict[str, str]:
    fields, key = {}, None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def unpack_deb(path: Path, dest: Path) -> None:
    """Unpack a ``.deb``'s files into ``dest`` (``dpkg-deb -x``, or Python without it)."""
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("dpkg-deb"):
        run = subprocess.run(["dpkg-deb", "-x", str(path), str(dest)], capture_output=True, text=True)
        if run.returncode == 0:
            return
        raise MozartError(f"dpkg-deb -x {Path(path).name} failed: {run.stderr.strip()}")
    members = _ar_members(path)
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise MozartError(f"{Path(path).name} has no data archive.")
    with _open_tar(name, members[name]) as tar:
        tar.extractall(dest, filter="data")


def tree_version(root: Path, package: str) -> str | None:
    """The version of an unpacked package, from its Debian changelog's first line."""
    for name in ("changelog.Debian.gz", "changelog.gz"):
        path = root / "usr/share/doc" / package / name
        if path.exists():
            try:
                first = gzip.decompress(path.read_bytes()).decode("utf-8", "replace").splitlines()[0]
            except (OSError, IndexError):
                continue
            m = re.match(rf"{re.escape(package)} \(([^)]+)\)", first)
            if m:
                return m.group(1)
    return None


# -- finding the music ------------------------------------------------------------------
def package_files(root: Path, spec: GamePackage) -> list[Path]:
    """The package's music files (MIDI, WADs, modules: ``spec.suffixes``) under an unpacked ``root``, sorted."""
    suffixes = (".wad",) if spec.wad else spec.suffixes
    found: set[Path] = set()
    for d in spec.dirs:
        base = root / d
        if base.is_dir():
            found.update(p for p in base.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
    return sorted(found)


def read_midi_file(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.lower().endswith(".gz") else data


def relpath(path: Path, root: Path) -> str:
    return PurePosixPath(path.relative_to(root)).as_posix()


# -- licences ---------------------------------------------------------------------------
_TEXT_LICENCES = (  # (regular expression on the licence text, short name), most specific first
    (r"GNU Lesser General Public License,?\s+version 2\.1 or later", "LGPL-2.1+"),
    (r"GNU General Public License,?\s+version 2 or later", "GPL-2+"),
    (r"licensed under the GPL,?\s+either version 3", "GPL-3+"),
    (r"either version 3 of the License, or", "GPL-3+"),
    (r"either version 2 of the License, or", "GPL-2+"),
    (r"Permission is granted to anyone to use this software for any purpose", "Zlib"),
    (r"Redistribution and use in source and binary forms", "BSD-3-Clause"),
    (r"creativecommons\.org/licenses/by/3\.0", "CC-BY-3.0"),
    (r"creativecommons\.org/licenses/by-sa/3\.0", "CC-BY-SA-3.0"),
    (r"Artistic License", "Artistic"),
    (r"Free Art License|Licence Art Libre", "FAL"),
    (r"distributed under the GNU General Public License", "GPL"),  # no version named
)
_KNOWN_SHORT = re.compile(r"^(GPL|LGPL|AGPL|BSD|MIT|Expat|Artistic|CC-|CC0|FAL|Zlib|Apache|MPL|ISC|public-domain)", re.I)


def text_licences(text: str) -> list[str]:
    """Licences recognised in free text, in order of first mention, without repeats."""
    hits = []
    for pattern, name in _TEXT_LICENCES:
        m = re.search(pattern.replace(" ", r"\s+"), text, re.I)
        if m and name not in [n for _, n in hits]:
            hits.append((m.start(), name))
    return [name for _, name in sorted(hits)]


def _paragraphs(text: str) -> list[dict[str, str]]:
    paras, current, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paras.append(current)
            current, key = {}, None
        elif line[:1] in (" ", "\t") and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        paras.append(current)
    return paras


def _glob_matches(pattern: str, path: str) -> bool:
    """A DEP-5 ``Files:`` pattern (source-tree path) against an installed path: match
    the pattern against the path's last components (``*`` alone matches everything)."""
    if pattern == "*":
        return True
    depth = pattern.count("/") + 1
    tail = "/".join(path.split("/")[-depth:])
    return fnmatch.fnmatchcase(tail, pattern) or fnmatch.fnmatchcase(PurePosixPath(path).name, pattern)


def _describe(short: str, stand_alone: dict[str, str]) -> str:
    """A DEP-5 short name, with the recognised family when the name is project-specific."""
    first = short.split(" or ")[0].strip()
    if _KNOWN_SHORT.match(first):
        return short
    family = text_licences(stand_alone.get(first, ""))
    return f"{short} ({family[0]}-style)" if family else short


def licence_for(copyright_text: str, installed_path: str) -> str:
    """Best-effort licence of one installed file from its package's ``copyright`` file.

    Machine-readable (DEP-5) files: the last ``Files:`` stanza whose pattern matches the
    file (``debian/*`` ignored). Free-form files: the licences named or quoted anywhere,
    as a summary such as ``"Zlib / GPL-3+ / CC-BY-3.0 (mixed, see copyright)"``.
    """
    paras = _paragraphs(copyright_text)
    if paras and "format" in paras[0] and "copyright-format" in paras[0]["format"]:
        stand_alone = {p["license"].splitlines()[0].strip(): p["license"] for p in paras if "files" not in p and "license" in p}
        best = None
        for p in paras:
            if "files" not in p or "license" not in p:
                continue
            patterns = p["files"].split()
            if all(pt.startswith("debian/") for pt in patterns):
                continue
            if any(_glob_matches(pt, installed_path) for pt in patterns):
                best = p["license"].splitlines()[0].strip()
        if best:
            return _describe(best, stand_alone)
    names = text_licences(copyright_text)
    if not names:
        return "unknown (see copyright file)"
    return names[0] if len(names) == 1 else " / ".join(names) + " (mixed, see copyright)"


def read_copyright(root: Path, package: str) -> str:
    path = root / "usr/share/doc" / package / "copyright"
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""
