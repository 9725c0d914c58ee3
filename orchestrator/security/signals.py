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
    # fourth round: errors handed to a callback (Node), refusals by status in web frameworks
    r"|\b(next|cb|callback|done|reject)\(\s*(new\s+\w*Error\b|\w*[eE]rr(or)?\b)"
    r"|\b(sendStatus|status|AbortWithStatus\w*)\(\s*4\d\d\b|\bctx\.throw\(\s*4\d\d"
    r"|\bHttpResponse(BadRequest|Forbidden|NotAllowed|NotFound)\(|\bstatus(_code)?\s*=\s*4\d\d\b"
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
    r"|owner\w*|trust\w*|whitelist|blacklist|allowlist|blocklist"
    # fourth round: safety checks, sandboxes, archives, shells, origins
    r"|is_?safe\w*|safe_(join|path|url|redirect|name|filename|html)|sandbox\w*|jail\w*|chroot"
    r"|unzip\w*|untar\w*|decompress\w*|shell\w*|run_?(command|cmd)|spawn\w*"
    r"|cors|origins?|csp|xss|ssrf|signed_?in|logged_?in)(?![a-z])"
)
