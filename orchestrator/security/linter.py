"""The security linter (bandit) on changed Python files, counting only findings on lines
the diff added (a finding in untouched code is not this change's doing).

Bandit runs in-process on copies of the new contents in a temporary directory: no model-
written code is imported or executed, bandit only parses it.
"""

from __future__ import annotations

import ast
import logging
import tempfile
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

from orchestrator.security.diff import FileChange, ParsedDiff

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class LinterFinding:
    path: str
    line: int
    test_id: str  # e.g. B602
    severity: str  # low / medium / high
    text: str


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _fragments(change: FileChange) -> str:
    """The added lines as parseable Python when no full content is known (best effort),
    one line per added line: the whole block if it parses, else each line on its own
    (a line that does not parse alone is left blank)."""
    text = textwrap.dedent(change.added_text) + "\n"
    if _parses(text):
        return text
    lines = [ln.strip() for _n, ln in change.added]
    return "\n".join(ln if ln and _parses(ln) else "" for ln in lines) + "\n"


class _UnusedFormatterFilter(logging.Filter):
    """Drops stevedore's "Could not load" records for bandit's report formatters only.

    bandit loads every formatter it knows at import time; one whose optional package is
    absent (``sarif`` needs ``sarif_om``) is logged as an ERROR although the gate never
    formats a report. Failures to load bandit's tests and blacklists still get through.
    """

    def __init__(self) -> None:
        super().__init__()
        from importlib.metadata import entry_points

        self.formatters = frozenset(e.name for e in entry_points(group="bandit.formatters"))

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        unused = record.msg == "Could not load %r: %s" and args[:1] and args[0] in self.formatters
        return not unused


_LOADER_LOG = logging.getLogger("stevedore.extension")


def _quiet_plugin_loading() -> None:
    """Call before bandit is first imported (its module-level loader logs at import)."""
    if not any(isinstance(f, _UnusedFormatterFilter) for f in _LOADER_LOG.filters):
        _LOADER_LOG.addFilter(_UnusedFormatterFilter())


def warm_up() -> None:
    """Import bandit now (about 0.1-0.2 s), so a job pays it before its first step."""
    _quiet_plugin_loading()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from bandit.core import manager  # noqa: F401


def _run_bandit(paths: list[Path]) -> list[tuple[str, int, str, str, str]]:
    _quiet_plugin_loading()
    with warnings.catch_warnings():  # bandit's plugin loader warns about its own arguments
        warnings.simplefilter("ignore", DeprecationWarning)
        from bandit.core import config as b_config
        from bandit.core import manager as b_manager

    manager = b_manager.BanditManager(b_config.BanditConfig(), "file", quiet=True)
    manager.discover_files([str(p) for p in paths])
    manager.run_tests()
    return [
        (i.fname, int(i.lineno), i.test_id, str(i.severity).lower(), i.text)
        for i in manager.get_issue_list()
    ]


def lint_changes(parsed: ParsedDiff, files: dict[str, str] | None = None) -> list[LinterFinding]:
    """Bandit findings on added lines of the changed Python files.

    ``files`` maps a path to its full new content; without it, only the added lines are
    linted (they may not parse, in which case that file yields nothing).
    """
    changes = [c for c in parsed.files if c.language == "python" and c.added and not c.deleted]
    if not changes:
        return []
    with tempfile.TemporaryDirectory(prefix="tandem-lint-") as tmp:
        by_temp: dict[str, tuple[FileChange, dict[int, int]]] = {}
        for i, change in enumerate(changes):
            target = Path(tmp) / f"f{i}.py"
            if files is not None and change.path in files:
                target.write_text(files[change.path], encoding="utf-8")
                line_map = {n: n for n, _t in change.added}
            else:
                target.write_text(_fragments(change), encoding="utf-8")
                line_map = {k + 1: n for k, (n, _t) in enumerate(change.added)}
            by_temp[str(target)] = (change, line_map)
        raw = _run_bandit([Path(p) for p in by_temp])
    findings = []
    for fname, lineno, test_id, severity, text in raw:
        change, line_map = by_temp[fname]
        if lineno in line_map:
            findings.append(LinterFinding(change.path, line_map[lineno], test_id, severity, text))
    return findings
