"""The ``debian`` source: game music inside Debian packages, one unit per package.

Each package of ``GAME_PACKAGES`` is found in ``--from DIR`` (a ``.deb`` or a tree it was
unpacked into), in ``data/cache/debs/`` or fetched with ``apt-get download``; a ``.deb`` is
unpacked into a temporary folder and every MIDI file (or Freedoom WAD lump) imported,
with the licence its ``copyright`` file gives. PianoBooster (``FOREIGN_PACKAGES``) goes to
``data/remix_inputs/`` instead: remix material, not training data. A package's
fingerprint is known once it is found (the ``.deb``'s hash, or the tree's files' hashes).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from composer.corpus import debian as deb
from composer.corpus import wad as wadlib
from composer.corpus.scores import skip_reason
from composer.corpus.session import BuildSession, fingerprint
from composer.corpus.sources.base import Source, midi_piece, stem
from composer.corpus.store import Unit, atomic_write, slugify
from composer.errors import MidiImportError, MozartError

FOREIGN = "foreign"  # the unit kind of packages whose tunes are remix inputs


def label_of(spec: deb.GamePackage) -> str:
    """The label ``--only`` names a package by: its game, or the package for foreign ones."""
    return spec.label or spec.package


def unit_key(spec: deb.GamePackage) -> str:
    return f"deb:{spec.package}"


class DebianPackages(Source):
    packages: ClassVar[tuple[deb.GamePackage, ...]] = deb.GAME_PACKAGES + deb.FOREIGN_PACKAGES

    def __init__(self, session: BuildSession, name: str, *, from_dir: Path | None = None, refresh: bool = False):
        super().__init__(session, name)
        self.from_dir = Path(from_dir) if from_dir else None  # .deb files, or a tree they were unpacked into
        self.refresh = refresh  # download again (newer versions) instead of using the cache
        self.cache = session.data_dir / "cache"
        self.remix_inputs = session.data_dir / "remix_inputs"

    def labels(self) -> set[str]:
        return {label_of(p) for p in self.packages}

    # -- finding the packages ----------------------------------------------------------
    def _in_from_dir(self, spec: deb.GamePackage) -> bool:
        return self.from_dir is not None and bool(
            deb.find_debs(self.from_dir, spec.package) or deb.package_files(self.from_dir, spec)
        )

    def _package_done(self, spec: deb.GamePackage) -> bool:
        if not spec.label and not (self.remix_inputs / spec.package / "index.jsonl").exists():
            return False
        return self.session.skip(unit_key(spec), None)

    def _locate(self, spec: deb.GamePackage) -> tuple[str, Path] | None:
        """Find the package: ('deb', file) or ('tree', unpacked root); None if unavailable."""
        if self.from_dir is not None:
            debs = deb.find_debs(self.from_dir, spec.package)
            if debs:
                return "deb", debs[-1]
            if deb.package_files(self.from_dir, spec):
                return "tree", self.from_dir
        cached = deb.find_debs(self.cache / "debs", spec.package)
        if cached and not self.refresh:
            return "deb", cached[-1]
        if not deb.apt_get_available():
            return None
        try:
            return "deb", deb.apt_download(spec.package, self.cache / "debs")
        except deb.AptError as e:
            self.session.warn(str(e))
            return None

    def build(self) -> None:
        session = self.session
        specs = [p for p in self.packages if session.wanted(label_of(p))]
        todo = [p for p in specs if self.refresh or self._in_from_dir(p) or not self._package_done(p)]
        if not todo:
            return
        unreachable = [
            p.package for p in todo if not self._in_from_dir(p) and not deb.find_debs(self.cache / "debs", p.package)
        ]
        if unreachable and not deb.apt_get_available():
            session.warn(
                f"apt-get is not available, so these packages are skipped: {', '.join(unreachable)}. On a "
                f"Debian/Ubuntu machine run `apt-get download {' '.join(unreachable)}`, copy the .deb files "
                "here and build again with `--from DIR`."
            )
        missing = []
        with session.bar(len(todo), "debian packages", unit="package") as bar:
            for spec in todo:
                bar.set_postfix_str(spec.package)
                found = self._locate(spec)
                if found is None:
                    missing.append(spec.package)
                else:
                    self._build_package(spec, found[0], found[1])
                bar.update()
        if missing:
            session.note(f"not built (unavailable): {', '.join(missing)}")

    # -- one package -------------------------------------------------------------------
    def fingerprint_parts(self, spec: deb.GamePackage) -> tuple[str, ...]:
        """What besides the package's files makes its pieces: its label (a relabelled
        package is imported again)."""
        return (spec.label,)

    def _build_package(self, spec: deb.GamePackage, how: str, where: Path) -> None:
        session = self.session
        if how == "deb":
            fp = fingerprint(deb.sha256_file(where), *self.fingerprint_parts(spec))
            if session.skip(unit_key(spec), fp):
                return
            try:
                version = deb.deb_control(where).get("Version", "unknown")
            except MozartError as e:
                session.warn(f"{where.name}: {e}")
                return
            self.cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.cache, prefix="unpack-") as tmp:
                try:
                    deb.unpack_deb(where, Path(tmp))
                except MozartError as e:
                    session.warn(str(e))
                    return
                self._import_package(fp, spec, Path(tmp), version, f"{where.name}")
        else:
            files = deb.package_files(where, spec)
            digest = [f"{deb.relpath(f, where)}:{deb.sha256_file(f)}" for f in files]
            fp = fingerprint(*digest, deb.read_copyright(where, spec.package), *self.fingerprint_parts(spec))
            if session.skip(unit_key(spec), fp):
                return
            version = deb.tree_version(where, spec.package) or "unknown"
            self._import_package(fp, spec, where, version, str(where))

    def _read_files(
        self, spec: deb.GamePackage, root: Path, unit: Unit, read: Callable[[Path], bytes]
    ) -> list[tuple[str, Path, bytes]]:
        """(path inside the package, file, ``read(file)``) of the package's music files."""
        out = []
        for f in deb.package_files(root, spec):
            try:
                out.append((deb.relpath(f, root), f, read(f)))
            except OSError as e:
                self.session.file_error(unit, f"{spec.package}:{deb.relpath(f, root)}", f"cannot read it ({e})")
        return out

    def _package_items(self, spec: deb.GamePackage, root: Path, unit: Unit) -> list[tuple[str, str, bytes]]:
        """(path inside the package, title, MIDI bytes) of every track, WAD lumps unpacked."""
        if not spec.wad:
            files = self._read_files(spec, root, unit, deb.read_midi_file)
            return [(path, stem(f.name), data) for path, f, data in files]
        wads = [(path, data) for path, _, data in self._read_files(spec, root, unit, Path.read_bytes)]
        try:
            lumps, dropped = wadlib.unique_midi_lumps(wads)
        except wadlib.WadError as e:
            self.session.file_error(unit, spec.package, f"bad WAD ({e})")
            return []
        if dropped:
            unit.info["identical_lumps_dropped"] = dropped
        return [(f"{wad_path}#{lump.name}", lump.name, lump.data) for wad_path, lump in lumps]

    def _import_package(self, fp: str, spec: deb.GamePackage, root: Path, version: str, origin: str) -> None:
        session, key = self.session, unit_key(spec)
        session.replace(key)
        copyright_text = deb.read_copyright(root, spec.package)
        unit = Unit(fp, self.name if spec.label else FOREIGN, label_of(spec))
        unit.info = {"package": spec.package, "version": version, "from": origin}
        items = self._package_items(spec, root, unit)
        if not items:
            session.warn(f"{spec.package} {version}: no music found in the package.")
        if not spec.label:
            self._remix_inputs(spec, version, copyright_text, items, unit)
            session.commit(key, unit)
            return
        licences = set()
        for path, title, data in items:
            licence = deb.licence_for(copyright_text, path.split("#")[0])
            licences.add(licence)
            source = f"{spec.package}:{path}"
            try:
                piece = midi_piece(data, source, game=spec.label, title=title)
            except Exception as e:  # a MIDI library failure must not stop the build
                session.file_error(unit, source, skip_reason(e))
                continue
            self._store(unit, spec, title, piece, source, version, path, licence)
        unit.info["licence"] = " | ".join(sorted(licences))
        session.commit(key, unit)

    def _store(self, unit: Unit, spec: deb.GamePackage, title: str, piece, source: str, version: str, path: str,
               licence: str) -> None:
        """One piece of a package into the store, as ``<label>/<title>``, with where it came from."""
        self.session.store.add_piece(unit, f"{spec.label}/{slugify(title)}", piece, source=source,
                                     source_type=self.name, package=spec.package, version=version, path=path,
                                     licence=licence)

    def _remix_inputs(self, spec: deb.GamePackage, version: str, copyright_text: str, items, unit: Unit) -> None:
        """Foreign tunes: MIDI files + ``index.jsonl`` under ``data/remix_inputs/<package>/``."""
        folder = self.remix_inputs / spec.package
        index = []
        for path, title, data in items:
            source = f"{spec.package}:{path}"
            try:
                piece = midi_piece(data, source, title=title)
            except MidiImportError as e:
                self.session.file_error(unit, source, str(e))
                continue
            name = f"{slugify(title)}.mid"
            atomic_write(folder / name, data)
            unit.ids.append(f"remix/{spec.package}/{name}")
            index.append(
                {
                    "file": name,
                    "title": title,
                    "source": source,
                    "package": spec.package,
                    "version": version,
                    "licence": deb.licence_for(copyright_text, path),
                    "time_signature": f"{piece.time_signature[0]}/{piece.time_signature[1]}",
                    "tempo": piece.tempo,
                    "key": piece.key,
                    "bars": piece.n_bars,
                    "notes": piece.note_count(),
                }
            )
        atomic_write(folder / "index.jsonl", "".join(json.dumps(e) + "\n" for e in index))
        self.session.note(f"{spec.package}: {len(index)} foreign tunes -> {folder} (remix inputs, not training data)")
        unit.ids = []  # not corpus pieces
        unit.info["remix_inputs"] = len(index)
