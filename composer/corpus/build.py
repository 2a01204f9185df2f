"""``corpus build``: run every corpus source into ``data/corpus/`` (cached, idempotent).

The sources (Debian game packages, the music21 corpus, the user's folders) are listed in
``composer.corpus.sources.REGISTRY``, one module each; this module only runs them, in
that order, with one ``BuildSession`` (``composer.corpus.session``). Each source's units
are done once and remembered in ``state.json``: a unit whose fingerprint (content hash +
``BUILDER_VERSION``) is unchanged is skipped, so a second build does nothing. Broken
files are skipped with a warning, never a crash.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

from composer.corpus.session import BUILDER_VERSION, BuildReport, BuildSession
from composer.corpus.sources import SOURCES, load_source
from composer.errors import MozartError

__all__ = ["BUILDER_VERSION", "SOURCES", "BuildReport", "Builder", "build_corpus"]


def source_options(cls: type) -> set[str]:
    """The build options a source class takes: its keyword-only constructor parameters."""
    return {p.name for p in inspect.signature(cls).parameters.values() if p.kind is p.KEYWORD_ONLY}


class Builder:
    """One build. ``sources``: which to run (default: all, in registry order); ``only``:
    labels to build; ``jobs``: processes for score parsing; ``force``: redo units that are
    up to date; ``progress``/``echo``: bars and messages on stderr. Any other option goes
    to the sources that take it (as a keyword-only constructor parameter), such as
    ``from_dir`` for Debian packages."""

    def __init__(
        self,
        data_dir: Path,
        *,
        sources: tuple[str, ...] = SOURCES,
        only: tuple[str, ...] = (),
        jobs: int | None = None,
        force: bool = False,
        progress: bool = True,
        echo: bool = True,
        **options,
    ):
        unknown = set(sources) - set(SOURCES)
        if unknown:
            raise MozartError(f"Unknown source {min(unknown)!r}. Known: {', '.join(SOURCES)}.")
        classes = {name: load_source(name) for name in SOURCES}
        takes = {name: source_options(cls) for name, cls in classes.items()}
        stray = sorted(set(options) - set().union(*takes.values()))
        if stray:
            raise TypeError(f"build_corpus() got an unexpected keyword argument {stray[0]!r}")
        self.session = BuildSession(data_dir, only=only, jobs=jobs, force=force, progress=progress, echo=echo)
        self.sources = {
            name: cls(self.session, name, **{k: v for k, v in options.items() if k in takes[name]})
            for name, cls in classes.items()
        }
        self.selected = set(sources)
        if self.session.only:
            known = self.known_labels()
            bad = sorted(self.session.only - known)
            if bad:
                raise MozartError(f"Unknown label {bad[0]!r} for --only. Known: {', '.join(sorted(known))}.")

    def known_labels(self) -> set[str]:
        """Every label any source can build (whichever sources this build runs)."""
        return set().union(*(source.labels() for source in self.sources.values()))

    def run(self) -> BuildReport:
        start = time.monotonic()
        report = self.session.report
        try:
            for name, source in self.sources.items():
                if name in self.selected:
                    source.build()
        finally:
            self.session.save()
            report.seconds = time.monotonic() - start
        return report


def build_corpus(data_dir: Path, **options) -> BuildReport:
    """Build or update ``data_dir/corpus``; see ``Builder`` for the options."""
    return Builder(data_dir, **options).run()
