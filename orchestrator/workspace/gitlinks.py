"""Submodules on an edit's path: no edit writes at or below a gitlink (mode 160000).

An edit there would not be this repository's to commit (``git add`` refuses: the path "is
in submodule"), and a step commit built without git would replace the submodule with a
folder holding that one file. ``paths`` refuses paths under a folder with its own ``.git``
(an initialised submodule); an uninitialised one is an empty folder like any other, so
the branch tip's tree is asked here.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import UnsafePath
from orchestrator.workspace.git import run_git, split_z
from orchestrator.workspace.treebuild import GITLINK_MODE, ObjectStore, gitlink_on


def refuse_in_submodules(
    root: Path, objects_dir: Path, head: str, head_tree: str | None, rels: list[str]
) -> None:
    """Raise ``UnsafePath`` when one of ``rels`` is, or lies inside, a submodule of commit
    ``head`` (``head_tree``: its tree, when known)."""
    store = ObjectStore(objects_dir) if len(head) == 40 else None
    for rel in rels:
        inner = _submodule_of(root, store, head, head_tree, rel)
        if inner is not None:
            raise UnsafePath(f"refused edit path {rel!r}: {inner!r} is a submodule; its files "
                             "are not editable from this repository")


def _submodule_of(
    root: Path, store: ObjectStore | None, head: str, head_tree: str | None, rel: str
) -> str | None:
    if store is not None:  # SHA-1 objects: read in-process, no git process per edit
        found = gitlink_on(store, head_tree or store.tree_of(head), os.fsencode(rel))
        return os.fsdecode(found) if found is not None else None
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    out = run_git(root, ["--literal-pathspecs", "ls-tree", "-z", head, "--", *prefixes])
    for entry in split_z(out):
        meta, _tab, path = entry.partition("\t")
        if meta.split(" ", 1)[0] == f"{GITLINK_MODE:o}" and path in prefixes:
            return path
    return None
