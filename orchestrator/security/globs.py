"""Path globs as policies write them: ``**`` spans directories, ``*`` stays inside one.

A glob without a ``/`` matches the file name anywhere (as in ``.gitignore``).
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def compile_glob(glob: str) -> re.Pattern[str]:
    """The regex of ``glob`` (cached)."""
    if "/" not in glob:
        glob = "**/" + glob
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE)


def glob_match(path: str, glob: str) -> bool:
    """Whether repository-relative ``path`` matches ``glob``."""
    return bool(compile_glob(glob).match(path.removeprefix("./")))


def matching(paths: list[str], globs: list[str]) -> list[str]:
    """The paths that match any of ``globs``."""
    return [p for p in paths if any(glob_match(p, g) for g in globs)]
