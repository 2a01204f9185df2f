"""The model versions a service composes with, served side by side so they can be compared on the
same stream of requests (the bot's ``cogs/utils/versions.py`` chooses one per request).

One ``ServedVersions`` per service: the studio that composes in this process, the queue studio that
only checks requests before a worker composes them, and each worker's child process hold one.
"""

from __future__ import annotations

from composer.errors import MozartError
from composer.generate.generator import Generator


class VersionError(MozartError):
    """A model version that cannot be served (or retired) as asked."""


class ServedVersions:
    """Version -> its loaded ``Generator``, oldest first. Versions share the style labels, so any of
    them can answer any request; the oldest validates requests and names the styles.

    ``need_folder``: every version added must have a model folder (``Generator.load``), for composing
    processes to load it from (the service checks the first when it starts)."""

    def __init__(self, generator: Generator, *, need_folder: bool = False):
        self.need_folder = need_folder
        self.generators: dict[str, Generator] = {generator.version: generator}

    @property
    def oldest(self) -> Generator:
        return next(iter(self.generators.values()))

    @property
    def names(self) -> list[str]:
        return list(self.generators)

    def __contains__(self, version: object) -> bool:
        return version in self.generators

    def get(self, version: str | None) -> Generator:
        """``version``'s generator; the oldest for None or a version retired meanwhile."""
        return self.generators.get(version) or self.oldest

    def folders(self) -> dict[str, str]:
        """Served version -> its model folder: what a composing process loads."""
        return {version: str(g.folder) for version, g in self.generators.items()}

    def add(self, generator: Generator) -> None:
        """Serve another version beside the others (it must know the same styles)."""
        if generator.version in self.generators:
            raise VersionError(f"Version {generator.version} is already being served.")
        if self.need_folder:
            self.check_folder(generator)
        if generator.catalog.names() != self.oldest.catalog.names():
            raise VersionError(f"Version {generator.version} knows other styles than {self.oldest.version}; "
                               "versions served together must share their style labels.")
        self.generators[generator.version] = generator

    def retire(self, version: str) -> Generator:
        """Stop serving ``version``; jobs already assigned to it finish with it."""
        if version not in self.generators:
            raise VersionError(f"Version {version} is not being served (serving: {', '.join(self.generators)}).")
        if len(self.generators) == 1:
            raise VersionError(f"Version {version} is the only one served; load another before retiring it.")
        return self.generators.pop(version)

    @staticmethod
    def check_folder(generator: Generator) -> None:
        if generator.folder is None:
            raise VersionError(f"Version {generator.version} has no model folder for the composing processes "
                               "to load: load it with Generator.load.")
