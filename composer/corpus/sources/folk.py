"""The ``folk`` source: the folk tune books that ship with music21, one piece per tune.

Material for pre-training melody (LakhNES's recipe: learn broadly, then fine-tune on the
styles), every piece labelled composer ``folk`` (so ``zelda-folk`` is a style):

* Ryan's Mammoth Collection (``ryansMammoth``): 1,059 fiddle tunes, one file each;
* O'Neill's Music of Ireland, "1850 melodies" (``oneills1850``): 39 books, ~1,900 tunes;
* the Essen folk songs (``essenFolksong``): 31 books, ~9,000 melodies;
* Aird's Airs (``airdsAirs``): 6 books, ~1,200 tunes; ``miscFolk``: two fife books.

A unit is one ABC file (its fingerprint is its content, so a second build parses
nothing). A book is split at its ``X:`` lines and every tune parsed on its own by
``import_tune_book``: music21 reads a book as one stream, where one broken tune sinks all
300, and ``composer.corpus.scores`` merges an opus whose tunes share one title into one
piece with a voice per tune (right for Josquin's ABC, wrong for Essen's ``ballad80``,
93 variants of "Graf und Nonne"). Title, time signature and tempo (``Q:``) come from each
tune; few tunes carry a tempo, the rest get ``music21_io``'s default. Tunes are one
voice (a few have a second one), so most pieces fill only the lead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from composer.corpus.scores import ScoreJob, skip_reason
from composer.corpus.session import BuildSession, fingerprint, sha256
from composer.corpus.sources.base import FileSource, SourceUnavailable, WorkUnit
from composer.corpus.store import slugify
from composer.errors import EmptyMidiError
from composer.music.grid import Piece

FOLK = "folk"  # the composer label of every tune
TUNE_BOOK_VERSION = 1  # bump when ``import_tune_book`` reads tunes differently: every book is redone
PUBLIC_DOMAIN = "public-domain tunes; ABC transcription from the music21 corpus (see music21/corpus/license.txt)"


@dataclass(frozen=True)
class Collection:
    slug: str  # piece ids: folk/<slug>-<file>[-<n>]
    name: str  # for people
    licence: str  # the manifest's licence of its pieces
    commercial: bool = True  # may a model served to the public learn from it?


COLLECTIONS: dict[str, Collection] = {  # music21 corpus folder -> collection
    "ryansMammoth": Collection("ryans", "Ryan's Mammoth Collection (Boston, 1883)", PUBLIC_DOMAIN),
    "oneills1850": Collection("oneills", "O'Neill's Music of Ireland (Chicago, 1903)", PUBLIC_DOMAIN),
    "essenFolksong": Collection(
        "essen",
        "Essen folk song collection (EsAC; ABC by Seymour Shlien)",
        "EsAC encodings: non-commercial distribution and use permitted (see music21/corpus/essenFolksong/license.txt)",
        commercial=False,
    ),
    "airdsAirs": Collection(
        "aird", "Aird's Selection of Scotch, English, Irish and Foreign Airs (Glasgow, 1778-1803)", PUBLIC_DOMAIN
    ),
    "miscFolk": Collection("misc", "American fife tunes; Northumbrian Minstrelsy (ABC by Jack Campin)", PUBLIC_DOMAIN),
}
_TUNE_START = re.compile(r"^X:", re.MULTILINE)
_HEADER_FIELD = re.compile(r"^(?:[A-SU-WYZa-z]:|%%)")  # file header lines every tune inherits (not T:/X:)
_REASON_CHARS = 160


def music21_corpus_root() -> Path:
    """The folder of music21's corpus; raises ``SourceUnavailable`` without music21."""
    try:
        from music21 import common
    except ImportError as e:
        raise SourceUnavailable(f"music21 is not installed ({e}); the folk tunes are skipped.") from None
    return Path(common.getCorpusFilePath())


# -- ABC books -> pieces (in worker processes) --------------------------------------------
def decode_abc(data: bytes) -> str:
    """ABC text: UTF-8, or Latin-1 (older books) where it is not valid UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_tunes(text: str) -> list[tuple[str, str]]:
    """``(reference number, tune text)`` of every tune of an ABC book, in order.

    A tune runs from its ``X:`` line to the next one; the file header (the fields before
    the first tune) is copied into every tune, after its ``X:`` line. A text without
    ``X:`` lines is one tune.
    """
    starts = [m.start() for m in _TUNE_START.finditer(text)]
    if not starts:
        return [("1", text)] if text.strip() else []
    header = [line for line in text[: starts[0]].splitlines() if _HEADER_FIELD.match(line)]
    tunes = []
    for n, (a, b) in enumerate(zip(starts, starts[1:] + [len(text)]), 1):
        first, *rest = text[a:b].splitlines()
        tunes.append((first[2:].strip() or str(n), "\n".join([first, *header, *rest]) + "\n"))
    return tunes


def tune_title(tune: str) -> str | None:
    """The tune's first ``T:`` field."""
    m = re.search(r"^T:(.*)$", tune, re.MULTILINE)
    return (m.group(1).strip() or None) if m else None


def tune_piece(tune: str, title: str, meta: dict) -> Piece:
    """One ABC tune -> ``Piece``; raises on a tune music21 cannot read or one without notes."""
    import music21

    from composer.music.music21_io import from_stream

    score = music21.converter.parseData(tune, format="abc")  # data, not a path: no pickle in music21's scratch folder
    if isinstance(score, music21.stream.Opus):  # a tune is one score; be safe all the same
        score = score.scores[0]
    return from_stream(score, title=title, **meta)


def _one_line(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"


def import_tune_book(job: ScoreJob) -> tuple[list[Piece], str | None]:
    """Pool entry point: every tune of the ABC book ``job.path`` as its own piece.

    Returns ``(pieces, None)``, or ``(pieces, why tunes were skipped)`` when some (or all)
    could not be read; tunes without notes are left out silently. Never raises.
    """
    try:
        tunes = split_tunes(decode_abc(Path(job.path).read_bytes()))
    except OSError as e:
        return [], f"cannot read it ({e.strerror})"
    pieces, failed = [], []
    for ref, tune in tunes:
        title = tune_title(tune) or (job.fallback_title if len(tunes) == 1 else f"{job.fallback_title} {ref}")
        try:
            pieces.append(tune_piece(tune, title, job.meta))
        except EmptyMidiError:
            continue
        except Exception as e:  # music21 has many ways to fail on odd ABC
            failed.append(f"X:{ref} {title!r} ({_one_line(skip_reason(e))})")
    if not tunes:
        return [], "no ABC tune in it"
    if not failed:
        return pieces, None if pieces else "no tune has notes"
    if len(tunes) == 1:
        return pieces, f"cannot be imported: {failed[0]}"
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    return pieces, f"{len(failed)} of {len(tunes)} tunes cannot be imported, e.g. {failed[0]}{more}"


# -- the source -----------------------------------------------------------------------
class FolkTunes(FileSource):
    """The folk tune books of ``COLLECTIONS``, from music21's corpus (or ``folk_root``)."""

    licence = PUBLIC_DOMAIN  # per collection: see ``licence_of``
    score_bar = "folk tunes"

    def __init__(self, session: BuildSession, name: str, *, folk_root: Path | None = None,
                 non_commercial: bool = False):
        super().__init__(session, name)
        # a folder laid out like music21's corpus (ryansMammoth/*.abc, ...) read instead of it
        self.folk_root = Path(folk_root) if folk_root else None
        # The Essen encodings allow non-commercial use only: a model for a public bot leaves
        # them out unless asked (8,427 tunes, 72 h).
        self.collections = {f: c for f, c in COLLECTIONS.items() if c.commercial or non_commercial}
        self.tunes: dict[str, int] = {}  # tunes per book (``X:`` lines), for the progress bar

    def labels(self) -> set[str]:
        return {FOLK}

    def files(self) -> list[tuple[str, Path]]:
        """(collection folder, ABC file) of every tune book there is, sorted."""
        root = self.folk_root or music21_corpus_root()
        found = [(folder, path) for folder in self.collections for path in sorted((root / folder).glob("*.abc"))]
        if not found:
            raise SourceUnavailable(f"no folk tune books in {root} (looked for {', '.join(self.collections)}); "
                                    "skipped.")
        missing = sorted({*self.collections} - {folder for folder, _ in found})
        if missing:
            folders = ", ".join(str(root / m) for m in missing)
            self.session.note(f"folk: no ABC files in {folders}; those collections are skipped.")
        return found

    def units(self) -> list[WorkUnit]:
        """One unit per book, largest first: the pool parses in that order and commits in
        this one, so books are stored as they finish (an interrupted build keeps them)."""
        if not self.session.wanted(FOLK):
            return []
        units, size = [], {}
        for folder, path in self.files():
            rel = f"{folder}/{path.name}"  # as in music21's corpus: "essenFolksong/erk10.abc"
            name = PurePosixPath(path.name).stem
            job = ScoreJob(str(path), {"composer": FOLK, "source": f"music21:{rel}"}, name)
            unit = WorkUnit(rel, FOLK, "", f"{FOLK}/{COLLECTIONS[folder].slug}-{slugify(name)}", job)
            try:
                data = path.read_bytes()
            except OSError as e:
                unit.error = f"cannot read it ({e.strerror})"
            else:
                unit.fingerprint = fingerprint(sha256(data), f"tunebook{TUNE_BOOK_VERSION}")
                self.tunes[rel] = max(1, len(_TUNE_START.findall(decode_abc(data))))
                size[rel] = len(data)
            units.append(unit)
        return sorted(units, key=lambda u: (-size.get(u.rel, 0), u.rel))

    # One piece per tune; the bar counts tunes: books run from one tune to 720, so files make a poor ETA.
    parse_job = staticmethod(import_tune_book)
    work_unit = "tune"

    def work(self, unit: WorkUnit) -> int:
        return self.tunes[unit.rel]

    def licence_of(self, unit: WorkUnit) -> str:
        return COLLECTIONS[unit.rel.split("/", 1)[0]].licence
