"""The ``tracker`` source: the MOD/XM/S3M/IT soundtracks of Debian's games, one unit per package.

Packages (``debian.TRACKER_PACKAGES``) are found, fetched and unpacked exactly as the
``debian`` source does it, with the licence of each file from the package's ``copyright``.
Every module, loose or inside a game archive (``composer.corpus.archives``), is played by
libxmp (``composer.corpus.modules``) and each of its songs reduced to the grid
(``composer.corpus.module_grid``); a song too short or too sparse to be music is skipped.
libxmp itself comes from the system or, without root, from Debian's ``libxmp4`` package,
fetched like the games and unpacked into ``data/cache/libxmp/``.
"""

from __future__ import annotations

from pathlib import Path

from composer.corpus import debian as deb
from composer.corpus import libxmp
from composer.corpus.archives import ArchiveError, modules_in
from composer.corpus.module_grid import song_piece
from composer.corpus.modules import ModuleError, read_module
from composer.corpus.scores import skip_reason
from composer.corpus.session import BuildSession
from composer.corpus.sources.base import stem
from composer.corpus.sources.debian_packages import DebianPackages, unit_key
from composer.corpus.store import Unit
from composer.errors import MozartError

# Bump when what a module becomes changes (the reader, the grid, the roles): every
# tracker package is imported again, and nothing else is.
READER_VERSION = 1


def ensure_libxmp(data_dir: Path, from_dir: Path | None = None) -> None:
    """Load libxmp: the system's, else the ``libxmp4`` package unpacked in the cache, else
    that package from ``from_dir``, the ``.deb`` cache or ``apt-get download``, unpacked
    first. Raises ``LibxmpMissing`` (saying how to get it) when none of these works."""
    if libxmp.available():
        return
    folder = libxmp.cache_dir(data_dir)
    found = libxmp.unpacked_library(folder)
    if found is None:
        debs = [d for base in (from_dir, Path(data_dir) / "cache" / "debs") if base
                for d in deb.find_debs(base, libxmp.DEB_PACKAGE)]
        if debs:
            package = debs[-1]
        elif deb.apt_get_available():
            package = deb.apt_download(libxmp.DEB_PACKAGE, Path(data_dir) / "cache" / "debs")
        else:
            libxmp.load()  # raises LibxmpMissing with the instructions
            return
        deb.unpack_deb(package, folder)
        found = libxmp.unpacked_library(folder)
    libxmp.load(found)


class TrackerModules(DebianPackages):
    packages = deb.TRACKER_PACKAGES

    def __init__(self, session: BuildSession, name: str, *, from_dir: Path | None = None, refresh: bool = False):
        super().__init__(session, name, from_dir=from_dir, refresh=refresh)
        self.libxmp_failed = False  # warned once; the packages that need it are left for the next build

    def fingerprint_parts(self, spec: deb.GamePackage) -> tuple[str, ...]:
        return (spec.label, f"tracker-reader{READER_VERSION}")

    def _build_package(self, spec: deb.GamePackage, how: str, where: Path) -> None:
        if not libxmp.available() and not self.libxmp_failed:
            try:
                ensure_libxmp(self.session.data_dir, self.from_dir)
            except MozartError as e:
                self.session.warn(f"tracker modules skipped: {e}")
                self.libxmp_failed = True
        if libxmp.available():
            super()._build_package(spec, how, where)

    def _import_package(self, fp: str, spec: deb.GamePackage, root: Path, version: str, origin: str) -> None:
        session, key = self.session, unit_key(spec)
        session.replace(key)
        copyright_text = deb.read_copyright(root, spec.package)
        unit = Unit(fp, self.name, spec.label)
        unit.info = {"package": spec.package, "version": version, "from": origin}
        licences, songs = set(), 0
        for path, _, blob in self._read_files(spec, root, unit, Path.read_bytes):
            try:
                inner = modules_in(path, blob)
            except ArchiveError as e:
                session.file_error(unit, f"{spec.package}:{path}", f"bad archive ({e})")
                continue
            for name, data in inner:
                source = f"{spec.package}:{name}"
                try:
                    module = read_module(data, source)
                    titled = [
                        (t := self._title(name, k), song_piece(module, song, game=spec.label, title=t))
                        for k, song in enumerate(module.songs)
                    ]
                except Exception as e:  # a damaged module must not stop the build
                    session.file_error(unit, source, str(e) if isinstance(e, ModuleError) else skip_reason(e))
                    continue
                licence = deb.licence_for(copyright_text, path)
                for song_title, piece in titled:
                    if piece is None:
                        continue
                    piece.source = source
                    piece.extra["module_format"] = module.format
                    songs += 1
                    licences.add(licence)
                    # the shared label's pieces are named after their game too
                    wanted = song_title if spec.label != deb.TRACKER else f"{spec.package.removesuffix('-data')}-{song_title}"
                    self._store(unit, spec, wanted, piece, source, version, name, licence)
        if not songs:
            session.warn(f"{spec.package} {version}: no tracker music found in the package.")
        unit.info["licence"] = " | ".join(sorted(licences))
        session.commit(key, unit)

    @staticmethod
    def _title(name: str, song: int) -> str:
        """'music/gd-ite.it' -> 'gd-ite'; a module's second song -> 'gd-ite (song 2)'."""
        title = stem(name.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
        return title if song == 0 else f"{title} (song {song + 1})"
