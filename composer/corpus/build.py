"""``corpus build``: gather every source into ``data/corpus/`` (cached, idempotent).

Sources, each split into *units* that are done once and remembered in ``state.json``:

* ``debian``  — one unit per game package (``GAME_PACKAGES``): ``apt-get download`` into
  ``data/cache/debs/`` (or a ``.deb``/unpacked tree from ``--from DIR``), ``dpkg-deb -x``
  into a temporary folder, every MIDI file (or Freedoom WAD lump) imported. PianoBooster
  (``FOREIGN_PACKAGES``) goes to ``data/remix_inputs/`` instead: remix material, not
  training data.
* ``music21`` — one unit per score file of the composers in ``COMPOSERS`` (parsed in a
  process pool; Palestrina capped, chosen deterministically).
* ``user``    — one unit per file under ``data/games/<label>/`` and ``data/composers/<label>/``.

A unit whose fingerprint (content hash + ``BUILDER_VERSION``) is unchanged is skipped, so
a second build does nothing. Broken files are skipped with a warning, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from composer.corpus import debian as deb
from composer.corpus import wad as wadlib
from composer.corpus.scores import (
    FORMAT_PREFERENCE,
    MIDI_SUFFIXES,
    SCORE_SUFFIXES,
    ScoreJob,
    import_score_job,
    read_maybe_gzip,
)
from composer.corpus.store import CorpusStore, Unit, atomic_write, slugify
from composer.errors import MidiImportError, MozartError
from composer.midi_io import import_midi

BUILDER_VERSION = 1  # bump when the grids a build writes change: every unit is redone

SOURCES = ("debian", "music21", "user")

# music21 corpus folders -> piece cap (None = all). Palestrina has 1318 mass movements;
# 300 chosen by a stable hash keep the build to minutes and the corpus balanced.
COMPOSERS: dict[str, int | None] = {
    "bach": None,
    "beethoven": None,
    "haydn": None,
    "josquin": None,
    "monteverdi": None,
    "mozart": None,
    "palestrina": 300,
}
MUSIC21_LICENCE = "public-domain work; encoding from the music21 corpus (see music21/corpus/license.txt)"
SAVE_EVERY_S = 5.0


@dataclass
class BuildReport:
    added: int = 0  # pieces written
    removed: int = 0  # pieces dropped (their source vanished or changed)
    units_done: int = 0  # units processed this run
    units_skipped: int = 0  # units already up to date
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def nothing_to_do(self) -> bool:
        return self.units_done == 0 and self.removed == 0


class _Out:
    """Messages that do not break the progress bars; warnings are also kept for the report."""

    def __init__(self, report: BuildReport, echo: bool):
        self.report, self.echo = report, echo

    def note(self, message: str) -> None:
        self.report.notes.append(message)
        if self.echo:
            tqdm.write(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        self.report.warnings.append(message)
        if self.echo:
            tqdm.write(f"warning: {message}", file=sys.stderr)


def _import_midi(data: bytes, source: str, **meta):
    # import_midi's first parameter is named ``source``, so Piece.source is set afterwards.
    piece = import_midi(data, **meta)
    piece.source = source
    return piece


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fingerprint(*parts: str) -> str:
    return _sha256("\0".join((f"builder{BUILDER_VERSION}",) + parts).encode())


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in (".gz",) + MIDI_SUFFIXES + SCORE_SUFFIXES:
        if lower.endswith(suffix):
            name, lower = name[: -len(suffix)], lower[: -len(suffix)]
    return name


class Builder:
    def __init__(
        self,
        data_dir: Path,
        *,
        only: tuple[str, ...] = (),
        from_dir: Path | None = None,
        jobs: int | None = None,
        sources: tuple[str, ...] = SOURCES,
        force: bool = False,
        refresh: bool = False,
        palestrina_cap: int | None = COMPOSERS["palestrina"],
        progress: bool = True,
        echo: bool = True,
    ):
        unknown = set(sources) - set(SOURCES)
        if unknown:
            raise MozartError(f"Unknown source {sorted(unknown)[0]!r}. Known: {', '.join(SOURCES)}.")
        self.data_dir = Path(data_dir)
        self.only = set(only)
        self.from_dir = Path(from_dir) if from_dir else None
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.sources = sources
        self.force = force
        self.refresh = refresh
        self.caps = {**COMPOSERS, "palestrina": palestrina_cap}
        self.progress = progress
        self.report = BuildReport()
        self.out = _Out(self.report, echo)
        self.store = CorpusStore(self.data_dir)
        self.cache = self.data_dir / "cache"
        self._last_save = time.monotonic()
        if self.only:
            known = self.known_labels()
            bad = sorted(self.only - known)
            if bad:
                raise MozartError(f"Unknown label {bad[0]!r} for --only. Known: {', '.join(sorted(known))}.")

    # -- labels ------------------------------------------------------------------------
    def user_labels(self) -> dict[str, str]:
        """label -> "game" | "composer" for the user's folders."""
        labels = {}
        for kind, folder in (("game", "games"), ("composer", "composers")):
            base = self.data_dir / folder
            if base.is_dir():
                for d in sorted(base.iterdir()):
                    if d.is_dir() and not d.name.startswith("."):
                        labels[slugify(d.name)] = kind
        return labels

    def known_labels(self) -> set[str]:
        return (
            {p.label for p in deb.GAME_PACKAGES}
            | {p.package for p in deb.FOREIGN_PACKAGES}
            | set(self.caps)
            | set(self.user_labels())
        )

    def wanted(self, label: str) -> bool:
        return not self.only or label in self.only

    # -- bookkeeping -------------------------------------------------------------------
    def _skip(self, key: str, fingerprint: str | None) -> bool:
        if self.force or not self.store.is_done(key, fingerprint):
            return False
        self.report.units_skipped += 1
        return True

    def _commit(self, key: str, unit: Unit) -> None:
        self.store.set_unit(key, unit)
        self.report.units_done += 1
        self.report.added += len(unit.ids)
        self.report.duplicates += len(unit.duplicates)
        if time.monotonic() - self._last_save > SAVE_EVERY_S:
            self.store.save()
            self._last_save = time.monotonic()

    def _replace(self, key: str) -> None:
        """Before re-importing a unit, forget what it produced last time."""
        if key in self.store.units:
            self.report.removed += self.store.drop_unit(key)

    def _bar(self, total: int, desc: str, unit: str = "file") -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, file=sys.stderr, leave=True)

    # -- run ---------------------------------------------------------------------------
    def run(self) -> BuildReport:
        start = time.monotonic()
        try:
            if "debian" in self.sources:
                self.build_debian()
            if "music21" in self.sources:
                self.build_music21()
            if "user" in self.sources:
                self.build_user()
        finally:
            self.store.save()
            self.report.seconds = time.monotonic() - start
        return self.report

    # -- Debian packages ---------------------------------------------------------------
    def _in_from_dir(self, spec: deb.GamePackage) -> bool:
        return self.from_dir is not None and bool(
            deb.find_debs(self.from_dir, spec.package) or deb.package_files(self.from_dir, spec)
        )

    def _package_done(self, spec: deb.GamePackage) -> bool:
        if not spec.label and not (self.data_dir / "remix_inputs" / spec.package / "index.jsonl").exists():
            return False
        return self._skip(f"deb:{spec.package}", None)

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
            self.out.warn(str(e))
            return None

    def build_debian(self) -> None:
        specs = [p for p in deb.GAME_PACKAGES + deb.FOREIGN_PACKAGES if self.wanted(p.label or p.package)]
        todo = [p for p in specs if self.refresh or self._in_from_dir(p) or not self._package_done(p)]
        if not todo:
            return
        unreachable = [
            p.package for p in todo if not self._in_from_dir(p) and not deb.find_debs(self.cache / "debs", p.package)
        ]
        if unreachable and not deb.apt_get_available():
            self.out.warn(
                f"apt-get is not available, so these packages are skipped: {', '.join(unreachable)}. On a "
                f"Debian/Ubuntu machine run `apt-get download {' '.join(unreachable)}`, copy the .deb files "
                "here and build again with `--from DIR`."
            )
        missing = []
        with self._bar(len(todo), "debian packages", unit="package") as bar:
            for spec in todo:
                bar.set_postfix_str(spec.package)
                found = self._locate(spec)
                if found is None:
                    missing.append(spec.package)
                else:
                    self._build_package(spec, found[0], found[1])
                bar.update()
        if missing:
            self.out.note(f"not built (unavailable): {', '.join(missing)}")

    def _build_package(self, spec: deb.GamePackage, how: str, where: Path) -> None:
        key = f"deb:{spec.package}"
        if how == "deb":
            fingerprint = _fingerprint(deb.sha256_file(where))
            if self._skip(key, fingerprint):
                return
            try:
                version = deb.deb_control(where).get("Version", "unknown")
            except MozartError as e:
                self.out.warn(f"{where.name}: {e}")
                return
            self.cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.cache, prefix="unpack-") as tmp:
                try:
                    deb.unpack_deb(where, Path(tmp))
                except MozartError as e:
                    self.out.warn(str(e))
                    return
                self._import_package(key, fingerprint, spec, Path(tmp), version, f"{where.name}")
        else:
            files = deb.package_files(where, spec)
            digest = [f"{deb.relpath(f, where)}:{deb.sha256_file(f)}" for f in files]
            fingerprint = _fingerprint(*digest, deb.read_copyright(where, spec.package))
            if self._skip(key, fingerprint):
                return
            version = deb.tree_version(where, spec.package) or "unknown"
            self._import_package(key, fingerprint, spec, where, version, str(where))

    def _package_items(self, spec: deb.GamePackage, root: Path, unit: Unit) -> list[tuple[str, str, bytes]]:
        """(path inside the package, title, MIDI bytes) of every track, WAD lumps unpacked."""
        files = deb.package_files(root, spec)
        if not spec.wad:
            items = []
            for f in files:
                try:
                    items.append((deb.relpath(f, root), _stem(f.name), deb.read_midi_file(f)))
                except OSError as e:
                    self._file_error(unit, f"{spec.package}:{deb.relpath(f, root)}", f"cannot read it ({e})")
            return items
        wads = []
        for f in files:
            try:
                wads.append((deb.relpath(f, root), f.read_bytes()))
            except OSError as e:
                self._file_error(unit, f"{spec.package}:{deb.relpath(f, root)}", f"cannot read it ({e})")
        try:
            lumps, dropped = wadlib.unique_midi_lumps(wads)
        except wadlib.WadError as e:
            self._file_error(unit, spec.package, f"bad WAD ({e})")
            return []
        if dropped:
            unit.info["identical_lumps_dropped"] = dropped
        return [(f"{wad_path}#{lump.name}", lump.name, lump.data) for wad_path, lump in lumps]

    def _file_error(self, unit: Unit, name: str, reason: str) -> None:
        unit.errors.append(f"{name}: {reason}")
        self.out.warn(f"skipped {name}: {reason}")

    def _import_package(self, key: str, fingerprint: str, spec: deb.GamePackage, root: Path, version: str, origin: str) -> None:
        self._replace(key)
        copyright_text = deb.read_copyright(root, spec.package)
        unit = Unit(fingerprint, "foreign" if not spec.label else "debian", spec.label or spec.package)
        unit.info = {"package": spec.package, "version": version, "from": origin}
        items = self._package_items(spec, root, unit)
        if not items:
            self.out.warn(f"{spec.package} {version}: no music found in the package.")
        if not spec.label:
            self._remix_inputs(spec, version, copyright_text, items, unit)
            self._commit(key, unit)
            return
        licences = set()
        for path, title, data in items:
            licence = deb.licence_for(copyright_text, path.split("#")[0])
            licences.add(licence)
            source = f"{spec.package}:{path}"
            try:
                piece = _import_midi(data, source, game=spec.label, title=title)
            except MidiImportError as e:
                self._file_error(unit, source, str(e))
                continue
            except Exception as e:  # a MIDI library failure must not stop the build
                self._file_error(unit, source, f"{type(e).__name__}: {e}")
                continue
            self.store.add_piece(
                unit,
                f"{spec.label}/{slugify(title)}",
                piece,
                source=source,
                source_type="debian",
                package=spec.package,
                version=version,
                path=path,
                licence=licence,
            )
        unit.info["licence"] = " | ".join(sorted(licences))
        self._commit(key, unit)

    def _remix_inputs(self, spec: deb.GamePackage, version: str, copyright_text: str, items, unit: Unit) -> None:
        """Foreign tunes: MIDI files + ``index.jsonl`` under ``data/remix_inputs/<package>/``."""
        folder = self.data_dir / "remix_inputs" / spec.package
        index = []
        for path, title, data in items:
            source = f"{spec.package}:{path}"
            try:
                piece = _import_midi(data, source, title=title)
            except MidiImportError as e:
                self._file_error(unit, source, str(e))
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
        self.out.note(f"{spec.package}: {len(index)} foreign tunes -> {folder} (remix inputs, not training data)")
        unit.ids = []  # not corpus pieces
        unit.info["remix_inputs"] = len(index)

    # -- music21 corpus ----------------------------------------------------------------
    def music21_files(self) -> list[tuple[str, Path]]:
        """(composer, path) of the score files to use, after format dedupe and caps."""
        from music21 import corpus

        chosen = []
        for composer in sorted(self.caps):
            if not self.wanted(composer):
                continue
            paths = [Path(p) for p in corpus.getComposer(composer) if str(p).lower().endswith(SCORE_SUFFIXES)]
            by_work: dict[str, list[Path]] = {}
            for p in paths:
                by_work.setdefault(str(p.with_suffix("")), []).append(p)
            kept = [min(ps, key=lambda p: FORMAT_PREFERENCE.index(p.suffix.lower())) for ps in by_work.values()]
            if len(kept) < len(paths):
                self.out.note(f"{composer}: {len(paths) - len(kept)} files skipped (same work in another format)")
            cap = self.caps[composer]
            if cap is not None and len(kept) > cap:
                kept = sorted(kept, key=lambda p: _sha256(self._corpus_rel(p).encode()))[:cap]
                self.out.note(
                    f"{composer}: using {cap} of {len(by_work)} pieces, chosen by a stable hash of the path "
                    "(cap keeps build time sane; --palestrina-cap to change)"
                )
            chosen += [(composer, p) for p in sorted(kept)]
        return chosen

    @staticmethod
    def _corpus_rel(path: Path) -> str:
        parts = path.parts
        i = len(parts) - 1 - parts[::-1].index("corpus")
        return PurePosixPath(*parts[i + 1 :]).as_posix()

    def build_music21(self) -> None:
        try:
            files = self.music21_files()
        except ImportError as e:
            self.out.warn(f"music21 is not installed ({e}); the classical corpus is skipped.")
            return
        planned = {f"music21:{self._corpus_rel(p)}" for _, p in files}
        for key in [k for k, u in self.store.units.items() if u.kind == "music21" and self.wanted(u.label)]:
            if key not in planned:
                self.report.removed += self.store.drop_unit(key)
        jobs = []
        for composer, path in files:
            rel = self._corpus_rel(path)
            key = f"music21:{rel}"
            fingerprint = _fingerprint(deb.sha256_file(path))
            if self._skip(key, fingerprint):
                continue
            inner = _stem(str(PurePosixPath(rel).relative_to(composer)))  # "k155/movement1"
            meta = {"composer": composer, "source": f"music21:{rel}"}
            job = ScoreJob(str(path), meta, fallback_title=inner.replace("/", " "))
            jobs.append((key, fingerprint, composer, f"{composer}/{slugify(inner.replace('/', '-'))}", rel, job))
        self._run_score_jobs(jobs, "music21 corpus", source_type="music21", licence=lambda rel: MUSIC21_LICENCE)

    def _run_score_jobs(self, jobs, desc: str, source_type: str, licence) -> None:
        """Parse score files in a process pool (largest first), commit in plan order."""
        if not jobs:
            return
        done: dict[int, tuple] = {}
        next_commit = 0
        with self._bar(len(jobs), desc) as bar:
            order = sorted(range(len(jobs)), key=lambda i: -Path(jobs[i][5].path).stat().st_size)
            if self.jobs > 1 and len(jobs) > 1:
                pool = ProcessPoolExecutor(max_workers=min(self.jobs, len(jobs)))
                futures = {pool.submit(import_score_job, jobs[i][5]): i for i in order}
                from concurrent.futures import as_completed

                results = ((futures[f], f.result()) for f in as_completed(futures))
            else:
                pool = None
                results = ((i, import_score_job(jobs[i][5])) for i in order)
            try:
                for i, result in results:
                    done[i] = result
                    bar.update()
                    while next_commit in done:
                        self._commit_score(jobs[next_commit], done.pop(next_commit), source_type, licence)
                        next_commit += 1
            finally:
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)

    def _commit_score(self, job, result, source_type: str, licence) -> None:
        key, fingerprint, label, wanted_id, rel, score_job = job
        pieces, error = result
        self._replace(key)
        unit = Unit(fingerprint, source_type, label)
        if error:
            self._file_error(unit, rel, error)
        for n, piece in enumerate(pieces, 1):
            self.store.add_piece(
                unit,
                wanted_id if len(pieces) == 1 else f"{wanted_id}-{n}",
                piece,
                source=score_job.meta["source"],
                source_type=source_type,
                path=rel,
                licence=licence(rel),
            )
        self._commit(key, unit)

    # -- user folders ------------------------------------------------------------------
    def user_files(self) -> list[tuple[str, str, Path]]:
        """(kind, label, path) of every usable file in data/games/* and data/composers/*."""
        out = []
        for kind, folder in (("game", "games"), ("composer", "composers")):
            base = self.data_dir / folder
            if not base.is_dir():
                continue
            for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
                label = slugify(d.name)
                if not self.wanted(label):
                    continue
                for path in sorted(d.rglob("*")):
                    if path.is_file() and path.name.lower().endswith(MIDI_SUFFIXES + SCORE_SUFFIXES):
                        out.append((kind, label, path))
        return out

    def build_user(self) -> None:
        files = self.user_files()
        planned = {f"user:{PurePosixPath(p.relative_to(self.data_dir)).as_posix()}" for _, _, p in files}
        for key in [k for k, u in self.store.units.items() if u.kind == "user" and self.wanted(u.label)]:
            if key not in planned:
                self.report.removed += self.store.drop_unit(key)
        midi, scores = [], []
        for kind, label, path in files:
            rel = PurePosixPath(path.relative_to(self.data_dir)).as_posix()
            key = f"user:{rel}"
            try:
                data = read_maybe_gzip(path)
            except OSError as e:
                self.out.warn(f"skipped {rel}: cannot read it ({e.strerror})")
                continue
            fingerprint = _fingerprint(_sha256(data))
            if self._skip(key, fingerprint):
                continue
            inner = PurePosixPath(rel).relative_to(PurePosixPath(rel).parts[0], PurePosixPath(rel).parts[1])
            slug = slugify(_stem(str(inner)).replace("/", "-"))
            meta = {kind: label, "source": rel}
            job = (key, fingerprint, label, f"{label}/{slug}", rel, ScoreJob(str(path), meta, _stem(path.name)))
            (midi if path.name.lower().endswith(MIDI_SUFFIXES) else scores).append((job, data))
        if midi:
            with self._bar(len(midi), "user MIDI files") as bar:
                for job, data in midi:
                    result = self._import_user_midi(job, data)
                    self._commit_score(job, result, "user", lambda rel: "user-supplied")
                    bar.update()
        self._run_score_jobs([job for job, _ in scores], "user score files", "user", lambda rel: "user-supplied")

    @staticmethod
    def _import_user_midi(job, data: bytes) -> tuple[list, str | None]:
        score_job = job[5]
        try:
            meta = dict(score_job.meta)
            return [_import_midi(data, meta.pop("source"), title=score_job.fallback_title, **meta)], None
        except MidiImportError as e:
            return [], str(e)
        except Exception as e:
            return [], f"{type(e).__name__}: {e}"


def build_corpus(data_dir: Path, **options) -> BuildReport:
    """Build or update ``data_dir/corpus``; see ``Builder`` for the options."""
    return Builder(data_dir, **options).run()
