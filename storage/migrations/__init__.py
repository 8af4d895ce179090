"""Versioned SQL migrations, one folder per backend: ``NNNN_name.sql``, applied in order.

Numbers are unique but may have gaps: parallel branches are each given a number ahead of
time, and a database applies whichever of them it has not applied yet (by version, not by
"the highest seen"), so a branch merged later still gets its migration applied."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load(backend: str) -> list[Migration]:
    folder = resources.files(__package__).joinpath(backend)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(
                Migration(int(version), rest.removesuffix(".sql"), entry.read_text("utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Unique and from 1; a gap is allowed (work given a later number may land before the
    # work given the earlier one; each version is applied once, whenever it arrives).
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise RuntimeError(f"{backend} migrations are not numbered uniquely from 1: {versions}")
    return found
