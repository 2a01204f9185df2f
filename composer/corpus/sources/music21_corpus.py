"""The ``music21`` source: the classical scores that ship with music21, one unit per file.

The composers in ``COMPOSERS`` (``music21.corpus.getComposer``); when one work is there in
several formats (``bach/bwv277.krn`` and ``.mxl``) the first of ``FORMAT_PREFERENCE`` is
kept; files that are not scores (Monteverdi's ``.rntxt`` Roman-numeral analyses) are left
out. Palestrina is capped: the pieces are chosen by a stable hash of their path. The
folk tune books of music21's corpus (Ryan's Mammoth, O'Neill's, Essen...) are the ``folk``
source (``composer.corpus.sources.folk``), one piece per tune.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from composer.corpus import debian as deb
from composer.corpus.scores import FORMAT_PREFERENCE, SCORE_SUFFIXES, ScoreJob
from composer.corpus.session import BuildSession, fingerprint, sha256
from composer.corpus.sources.base import FileSource, SourceUnavailable, WorkUnit, stem
from composer.corpus.store import slugify

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


def corpus_rel(path: Path) -> str:
    """A music21 corpus file's path inside the corpus: 'bach/bwv66.6.mxl'."""
    parts = path.parts
    i = len(parts) - 1 - parts[::-1].index("corpus")
    return PurePosixPath(*parts[i + 1 :]).as_posix()


class Music21Corpus(FileSource):
    licence = MUSIC21_LICENCE
    score_bar = "music21 corpus"

    def __init__(self, session: BuildSession, name: str, *, palestrina_cap: int | None = COMPOSERS["palestrina"]):
        super().__init__(session, name)
        self.caps = {**COMPOSERS, "palestrina": palestrina_cap}

    def labels(self) -> set[str]:
        return set(self.caps)

    def files(self) -> list[tuple[str, Path]]:
        """(composer, path) of the score files to use, after format dedupe and caps."""
        from music21 import corpus

        chosen = []
        for composer in sorted(self.caps):
            if not self.session.wanted(composer):
                continue
            paths = [Path(p) for p in corpus.getComposer(composer) if str(p).lower().endswith(SCORE_SUFFIXES)]
            by_work: dict[str, list[Path]] = {}
            for p in paths:
                by_work.setdefault(str(p.with_suffix("")), []).append(p)
            kept = [min(ps, key=lambda p: FORMAT_PREFERENCE.index(p.suffix.lower())) for ps in by_work.values()]
            if len(kept) < len(paths):
                self.session.note(f"{composer}: {len(paths) - len(kept)} files skipped (same work in another format)")
            cap = self.caps[composer]
            if cap is not None and len(kept) > cap:
                kept = sorted(kept, key=lambda p: sha256(corpus_rel(p).encode()))[:cap]
                self.session.note(
                    f"{composer}: using {cap} of {len(by_work)} pieces, chosen by a stable hash of the path "
                    "(cap keeps build time sane; --palestrina-cap to change)"
                )
            chosen += [(composer, p) for p in sorted(kept)]
        return chosen

    def units(self) -> list[WorkUnit]:
        """One unit per file, largest first: the pool parses in that order and commits in
        this one, so files are stored as they finish. (In ``files()`` order the first to
        commit is a small Bach chorale, parsed last: an interrupted cold build kept nothing.)"""
        try:
            files = self.files()
        except ImportError as e:
            raise SourceUnavailable(f"music21 is not installed ({e}); the classical corpus is skipped.") from None
        units = []
        for composer, path in files:
            rel = corpus_rel(path)
            inner = stem(str(PurePosixPath(rel).relative_to(composer)))  # "k155/movement1"
            job = ScoreJob(str(path), {"composer": composer, "source": f"music21:{rel}"}, inner.replace("/", " "))
            piece_id = f"{composer}/{slugify(inner.replace('/', '-'))}"
            units.append(WorkUnit(rel, composer, fingerprint(deb.sha256_file(path)), piece_id, job))
        return sorted(units, key=lambda u: (-Path(u.job.path).stat().st_size, u.rel))
