"""Scripted answers ("tapes"): loading, validating and matching.

A tape is a list of entries; the first entry whose ``match`` holds answers the request.
``contains`` (all substrings, case-sensitive) and ``regex`` (``re.search``) are tested
against the text of the request's last user message, or against the whole input
(instructions included) when ``match.anywhere`` is true. ``times`` limits how often an
entry answers; a used-up entry is skipped.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from orchestrator.errors import SimConfigError
from orchestrator.sim.config import TapeEntry
from orchestrator.sim.prompt import Prompt

_ENTRIES = TypeAdapter(list[TapeEntry])


def load_tape(path: str | Path) -> list[TapeEntry]:
    """Read a tape from YAML (a list, or a mapping with ``entries``) or JSONL."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SimConfigError(f"{path}: cannot read tape: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SimConfigError(f"{path}: not a text file (a tape is UTF-8 YAML or JSONL)") from exc
    raw = _parse_jsonl(path, text) if path.suffix == ".jsonl" else _parse_yaml(path, text)
    if isinstance(raw, dict):
        raw = raw.get("entries")
    if not raw:  # empty, ``{}``, a mapping without entries (a policy file?), ``entries: []``
        raise SimConfigError(f"{path}: no tape entries (expected a list of entries, "
                             "or a mapping with 'entries:')")
    if not isinstance(raw, list):
        raise SimConfigError(f"{path}: tape entries must be a list (got {type(raw).__name__})")
    return validate_entries(raw, where=str(path))


def validate_entries(raw: Any, *, where: str = "<tape>") -> list[TapeEntry]:
    try:
        entries = _ENTRIES.validate_python(raw or [])
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SimConfigError(f"{where}: entry {loc}: {err['msg']}") from exc
    for i, entry in enumerate(entries):
        if entry.match.regex is not None:
            try:
                re.compile(entry.match.regex)
            except re.error as exc:
                raise SimConfigError(f"{where}: entry {i}: bad regex: {exc}") from exc
    return entries


def _parse_jsonl(path: Path, text: str) -> list[Any]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SimConfigError(f"{path}:{lineno}: not JSON: {exc.msg}") from exc
    return out


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:  # one line with the file and line, like policies
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SimConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise SimConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from exc


class Tape:
    """Entries plus how often each was used (shared by all connections)."""

    def __init__(self, entries: list[TapeEntry]) -> None:
        self.entries = entries
        self._used = [0] * len(entries)
        self._lock = threading.Lock()

    def take(self, prompt: Prompt) -> TapeEntry | None:
        """The first matching entry that still has uses left (and count this use)."""
        with self._lock:
            for i, entry in enumerate(self.entries):
                if entry.times is not None and self._used[i] >= entry.times:
                    continue
                if matches(entry, prompt):
                    self._used[i] += 1
                    return entry
        return None

    def reset(self) -> None:
        with self._lock:
            self._used = [0] * len(self.entries)


def matches(entry: TapeEntry, prompt: Prompt) -> bool:
    m = entry.match
    if m.model is not None and m.model != prompt.model:
        return False
    subject = prompt.all_text if m.anywhere else prompt.last_user_text
    if any(s not in subject for s in m.contains):
        return False
    return m.regex is None or re.search(m.regex, subject) is not None
