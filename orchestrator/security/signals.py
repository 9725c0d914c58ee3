"""Structural signals of a change, as opposed to the pattern catalogue in ``patterns.py``:
an added check that rejects input (a guard), and the names of the functions a change is in.
"""

from __future__ import annotations

import re

# Added lines that reject input: the "a check was added" half of many fixes.
GUARD = re.compile(
    r"\b(raise|throw|abort)\b|\breturn\b[^\n]*(\berr\b|\berrors\.New\(|\w*Errorf?\(|\bErr[A-Z]\w*"
    r"|\bhttp\.Error\(|res\.status\(4\d\d\)|\b(false|None|null|undefined|nil)\b)"
    r"|\bhttp\.Error\(|\bStatus(BadRequest|Forbidden|Unauthorized)\b"
)
CONDITION = re.compile(r"^\s*(if|elif|else if|}\s*else if|unless|switch|case)\b|^\s*if\s*\("
r"|\bif\s+!")

# A definition line (Python, Go, JavaScript); the name is the last group that matched.
DEFINITION = re.compile(
    r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)|^\s*func\s+(?:\([^)]*\)\s*)?(\w+)"
    r"|^\s*(?:export\s+)?(?:async\s+)?function\s*\*?\s*(\w+)|(\w+)\s*[:=]\s*(?:async\s+)?function\b"
)
# Function names (folded: lower case, camelCase split by "_") that name a security concern.
SECURITY_FUNCTION = re.compile(
    r"(?<![a-z])(auth\w*|log_?in|log_?out|sign_?in|verif\w*|saniti[sz]\w*|escape\w*"
    # validation of data in general is everyday code; validation of where input points is not
    r"|validat\w*_(path|url|uri|file\w*|host\w*|domain\w*|redirect\w*|origin|input|scheme|ip)\w*"
    r"|(path|url|uri|file\w*|host\w*|domain\w*|redirect|origin|input)_?validat\w*"
    r"|permission\w*|perms?|token\w*|sessions?|passw\w*|redirect\w*|upload\w*|csrf|secur\w*"
    r"|unsafe|allow\w*|acl|access|credential\w*|encrypt\w*|decrypt\w*|privilege\w*"
    r"|roles?|owner\w*|trust\w*|whitelist|blacklist|allowlist|blocklist)(?![a-z])"
)
