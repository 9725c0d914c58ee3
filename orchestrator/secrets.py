"""Secret detection and redaction.

Used by the post-edit gate (a secret in a diff is always blocked), by PR delivery (nothing
with a secret leaves the machine) and by anything that writes logs or events. Findings
never carry the secret itself: ``excerpt`` is the matched line with the secret replaced.

Detection is deliberately conservative about false positives: provider key formats are
matched by their documented prefixes and lengths; generic assignments
(``password = "..."``) count only when the value is a literal with high entropy that is
not a placeholder and not read from the environment. A provider key split across string
literals joined by ``+`` (or nothing, or ``.``/``..``), on one line or two, is found in the
joined text; one written in base64 or hex is found in its decoded text.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import math
import re
from collections.abc import Iterator, Sequence

from pydantic import BaseModel

__all__ = ["SecretFinding", "find_secrets", "redact"]

Span = tuple[int, int, str]  # (start, end, kind) within one line


class SecretFinding(BaseModel):
    """One secret found in a text."""

    kind: str
    line: int  # 1-based line in the scanned text
    excerpt: str  # the line, redacted; never the secret itself


# kind -> pattern; group "s" (or the whole match) is the secret.
_PROVIDER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx))
    for kind, rx in (
        ("private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),
        ("github-token", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
        ("gitlab-token", r"\bglpat-[A-Za-z0-9_\-]{20,}"),
        ("slack-token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
        ("stripe-key", r"\b[sr]k_live_[A-Za-z0-9]{16,}\b"),
        ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
        ("openai-key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
        ("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
        ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    )
)

# The name must END with a credential word: `api_key`, `DB_PASSWORD`, `GITHUB_TOKEN`,
# `client_secret`; not `tokenizer` or `secret_name`.
_CRED_NAME = (
    r"[A-Za-z0-9_\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
    r"|private[_\-]?key|secret[_\-]?key|credentials?|auth[_\-]?key)"
)
# name = "value" / name: 'value' / "name": "value" (source code, JSON, YAML; also with the
# quotes escaped, as code quoted inside a JSON string is)
_ASSIGNMENT = re.compile(
    r"""\b(?P<name>""" + _CRED_NAME + r""")\\?["']?\s*(?::=|=>|==|[:=])\s*"""
    r"""[bru]?\\?(?P<q>["'`])(?P<s>[^"'`\s]{8,}?)\\?(?P=q)""",
    re.IGNORECASE,
)
# NAME=value / name: value on a line of its own (env files, YAML), optionally a diff line.
_BARE_ASSIGNMENT = re.compile(
    r"""^[+\- ]?\s*(?:export\s+)?(?P<name>""" + _CRED_NAME + r""")\s*[:=]\s*"""
    r"""(?P<s>[A-Za-z0-9+/_\-=~]{16,})\s*$""",
    re.IGNORECASE,
)
# NAME=value inside a line: a shell command (`API_TOKEN=... make test`), or an env file's
# line quoted into a JSON string (`"DB_PASSWORD=...\n"`). Upper-case names only, as the
# environment writes them: in code, `token=value` is usually a keyword argument.
_INLINE_ENV = re.compile(
    r"""(?<![A-Za-z0-9_])(?P<name>[A-Z0-9_]*(?:PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_?KEY"""
    r"""|APIKEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH_?KEY))=(?P<s>[A-Za-z0-9+/_\-=~.]{16,}?)"""
    r"""(?=\\[nrt"]|["'`\s;&|]|$)"""
)
_PLACEHOLDER = re.compile(
    r"changeme|change_me|example|dummy|placeholder|sample|your[_\-]|xxx|\*\*\*"
    r"|redacted|test|fake|secret|password|token|none|null|todo|lorem|abc123|123456|0000",
    re.IGNORECASE,
)
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_MIN_ENTROPY_BITS = 3.0
_MIN_KNOWN_LEN = 6


def _entropy_bits(value: str) -> float:
    """Shannon entropy per character."""
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _is_real_token(value: str) -> bool:
    """Documented example keys (AKIA...EXAMPLE) and all-letter words are not secrets."""
    if "EXAMPLE" in value.upper():
        return False
    return value.startswith("-----") or bool(re.search(r"[0-9]", value))


def _looks_secret(value: str) -> bool:
    if _PLACEHOLDER.search(value) or len(set(value)) < 6:
        return False
    if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+|[A-Z_]+", value):  # dotted names, CONSTANTS
        return False
    classes = sum(
        bool(re.search(rx, value)) for rx in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )
    return classes >= 2 and _entropy_bits(value) >= _MIN_ENTROPY_BITS


# Necessary conditions, one search each: a line without any of these cannot match the
# patterns above (most lines of logs and events), so the full set is not tried on it.
_PROVIDER_HINT = re.compile(
    r"-----BEGIN|A[KSB]IA|ACCA|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|k_live_|sk-|AIza|eyJ"
)
_CRED_HINT = re.compile(r"""(?:passw(?:or)?d|pwd|secret|token|key|credentials?)\\?["']?\s*[:=]""",
                        re.IGNORECASE)


# A run that may be a key in base64 (standard or URL-safe) or hex: decoded, it is searched
# for the provider formats (a hash or random bytes decode to no text and are skipped).
_ENCODED = re.compile(r"(?<![A-Za-z0-9+/_\-])"
                      r"(?:[A-Za-z0-9+/_\-]{24,}={0,2}|(?:[0-9a-fA-F]{2}){16,})"
                      r"(?![A-Za-z0-9+/_\-])")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_PRINTABLE = re.compile(r"[\t\n\r\x20-\x7e]+")
# String literals joined into one value: "ab" + "cd", "ab" "cd", 'ab' . 'cd', "ab" .. "cd",
# on one line or continued on the next. Each separator is unambiguous (no backtracking).
_LITERAL = r"""(?:"[^"\\\n]*"|'[^'\\\n]*'|`[^`\\\n]*`)"""
_JOIN = r"[ \t]*(?:(?:\+|\.\.?)[ \t]*)?(?:\\?\r?\n[ \t]*(?:(?:\+|\.\.?)[ \t]*)?)?"
_CHAIN = re.compile(_LITERAL + r"(?:" + _JOIN + _LITERAL + r")+")
_ONE_LITERAL = re.compile(_LITERAL)


def _provider_hits(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, kind) of the provider-format keys in ``text``."""
    if _PROVIDER_HINT.search(text):
        for kind, pattern in _PROVIDER_PATTERNS:
            for m in pattern.finditer(text):
                if _is_real_token(m.group(0)):
                    yield m.start(), m.end(), kind


def _decoded(token: str) -> str | None:
    """``token`` decoded from hex or base64 when that gives text, else None."""
    try:
        if _HEX.fullmatch(token):
            raw = bytes.fromhex(token)
        else:
            alphabet = b"-_" if ("-" in token or "_" in token) else None
            data = token.rstrip("=")
            raw = base64.b64decode(data + "=" * (-len(data) % 4), altchars=alphabet,
                                   validate=True)
        text = raw.decode("ascii")
    except (ValueError, binascii.Error):
        return None
    return text if _PRINTABLE.fullmatch(text) else None


def _encoded_spans(line: str, known_values: Sequence[str]) -> Iterator[Span]:
    for m in _ENCODED.finditer(line):
        decoded = _decoded(m.group(0))
        if decoded is None:
            continue
        kinds = [kind for _start, _end, kind in _provider_hits(decoded)]
        kinds += ["known-secret" for value in known_values
                  if len(value) >= _MIN_KNOWN_LEN and value in decoded]
        if kinds:
            yield m.start(), m.end(), f"{kinds[0]}-encoded"


def _split_spans(text: str, known_values: Sequence[str]) -> dict[int, list[Span]]:
    """Line index -> spans of the string literals that together spell a key."""
    out: dict[int, list[Span]] = {}
    if text.count('"') + text.count("'") + text.count("`") < 4:
        return out
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    for chain in _CHAIN.finditer(text):
        parts = list(_ONE_LITERAL.finditer(text, chain.start(), chain.end()))
        joined, edges = "", []
        for part in parts:
            edges.append(len(joined))
            joined += part.group(0)[1:-1]
        found = [(a, b, kind) for a, b, kind in _provider_hits(joined)]
        found += [(m.start(), m.end(), "known-secret") for value in known_values
                  if len(value) >= _MIN_KNOWN_LEN and value in joined
                  for m in re.finditer(re.escape(value), joined)]
        for start, end, kind in found:
            first = bisect.bisect_right(edges, start) - 1
            last = bisect.bisect_left(edges, end) - 1
            if first == last:
                continue  # inside one literal: the line scan finds it
            rows: dict[int, tuple[int, int]] = {}  # one span per line, over its literals
            for part in parts[first:last + 1]:
                row = bisect.bisect_right(starts, part.start()) - 1
                a, b = part.start() - starts[row], part.end() - starts[row]
                old = rows.get(row, (a, b))
                rows[row] = (min(old[0], a), max(old[1], b))
            for row, (a, b) in rows.items():
                out.setdefault(row, []).append((a, b, kind))
    return out


def _spans(line: str, known_values: Sequence[str]) -> Iterator[Span]:
    """(start, end, kind) of every secret in one line."""
    for value in known_values:
        if len(value) >= _MIN_KNOWN_LEN and value in line:
            for m in re.finditer(re.escape(value), line):
                yield m.start(), m.end(), "known-secret"
    yield from _provider_hits(line)
    yield from _encoded_spans(line, known_values)
    if _CRED_HINT.search(line):
        for pattern in (_ASSIGNMENT, _BARE_ASSIGNMENT, _INLINE_ENV):
            for m in pattern.finditer(line):
                if _looks_secret(m.group("s")):
                    yield m.start("s"), m.end("s"), "credential-assignment"


def _merged(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans; the earlier (then longer) span wins an overlap."""
    out: list[Span] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if out and start < out[-1][1]:
            continue
        out.append((start, end, kind))
    return out


def _redact_line(line: str, spans: list[Span]) -> str:
    parts: list[str] = []
    pos = 0
    for start, end, kind in spans:
        parts.append(line[pos:start])
        parts.append(f"[REDACTED:{kind}]")
        pos = end
    parts.append(line[pos:])
    return "".join(parts)


def _scan(text: str, known_values: Sequence[str]) -> Iterator[tuple[int, str, list[Span], bool]]:
    """(line number, line, spans, inside a PEM body) for every line that holds a secret."""
    in_key = False
    split = _split_spans(text, known_values)
    for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
        if in_key:
            in_key = not _PEM_END.search(line)
            body = line.rstrip("\r\n")
            yield lineno, line, [(0, len(body), "private-key")], True
            continue
        spans = _merged([*_spans(line, known_values), *split.get(lineno - 1, [])])
        if _PEM_BEGIN.search(line) and not _PEM_END.search(line):
            in_key = True
        if spans:
            yield lineno, line, spans, False


def find_secrets(text: str, known_values: Sequence[str] = ()) -> list[SecretFinding]:
    """Every secret in ``text``: provider key formats, private keys, JWTs, high-entropy
    credential assignments, and any exact occurrence of ``known_values``."""
    findings: list[SecretFinding] = []
    for lineno, line, spans, in_pem_body in _scan(text, known_values):
        if in_pem_body:
            continue
        excerpt = _redact_line(line.rstrip("\r\n"), spans).strip()[:200]
        for _start, _end, kind in spans:
            findings.append(SecretFinding(kind=kind, line=lineno, excerpt=excerpt))
    return findings


def redact(text: str, known_values: Sequence[str] = ()) -> str:
    """``text`` with each secret replaced by ``[REDACTED:<kind>]``."""
    if not text:
        return text
    lines = text.splitlines(keepends=True)
    for lineno, line, spans, _body in _scan(text, known_values):
        lines[lineno - 1] = _redact_line(line, spans)
    return "".join(lines)
