"""The ``user`` source: the user's own folders, one unit per file.

``data/games/<label>/`` and ``data/composers/<label>/`` (sub-folders too) hold MIDI files
(``.mid``, ``.midi``, gzipped or not) and score files (MusicXML, MXL, Humdrum, ABC). A
folder named like a shipped style replaces it (``data/games/zelda/`` is the real thing
where the shipped ``zelda`` is an alias).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from composer.corpus.scores import (
    MIDI_SUFFIXES,
    SCORE_SUFFIXES,
    ScoreJob,
    read_maybe_gzip,
)
from composer.corpus.session import fingerprint, sha256
from composer.corpus.sources.base import FileSource, WorkUnit, stem
from composer.corpus.store import slugify

FOLDERS = (("game", "games"), ("composer", "composers"))  # (label kind, folder under data/)


class UserFolders(FileSource):
    licence = "user-supplied"
    midi_bar = "user MIDI files"
    score_bar = "user score files"

    def folders(self) -> list[tuple[str, str, Path]]:
        """(kind, label, folder) of every label folder, hidden ones left out."""
        out = []
        for kind, folder in FOLDERS:
            base = self.session.data_dir / folder
            if base.is_dir():
                for d in sorted(base.iterdir()):
                    if d.is_dir() and not d.name.startswith("."):
                        out.append((kind, slugify(d.name), d))
        return out

    def labels(self) -> set[str]:
        return {label for _, label, _ in self.folders()}

    def files(self) -> list[tuple[str, str, Path]]:
        """(kind, label, path) of every usable file in the wanted label folders."""
        return [
            (kind, label, path)
            for kind, label, folder in self.folders()
            if self.session.wanted(label)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name.lower().endswith(MIDI_SUFFIXES + SCORE_SUFFIXES)
        ]

    def units(self) -> list[WorkUnit]:
        units = []
        for kind, label, path in self.files():
            rel = PurePosixPath(path.relative_to(self.session.data_dir)).as_posix()  # "games/zelda/a.mid"
            inner = PurePosixPath(*PurePosixPath(rel).parts[2:]).as_posix()  # "a.mid"
            job = ScoreJob(str(path), {kind: label, "source": rel}, stem(path.name))
            unit = WorkUnit(rel, label, "", f"{label}/{slugify(stem(inner).replace('/', '-'))}", job)
            try:
                data = read_maybe_gzip(path)
            except OSError as e:
                unit.error = f"cannot read it ({e.strerror})"
            else:
                unit.fingerprint = fingerprint(sha256(data))
                if path.name.lower().endswith(MIDI_SUFFIXES):
                    unit.midi = data
            units.append(unit)
        return units
