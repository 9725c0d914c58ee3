"""Risky-code patterns per language, grouped by category of security knowledge.

Each pattern is general knowledge about where vulnerabilities live (injection sinks, auth
and session code, crypto, deserialisation, path handling, templating and escaping,
permissions, redirects, ...), never a string taken from a particular project.

Weights: 1.0 for sinks and security APIs, 0.5 for medium signals (security vocabulary,
prefix checks on paths/URLs, HTTP framing), 0.25 for weak ones common in ordinary code
(regexes, size limits, rejection messages, and ``scan.py``'s "a check that rejects input
was added"). A pattern matched on an added or removed line counts its full weight; on an
unchanged context line of the same file it counts half when the change adds a guard (a new
condition that rejects input): "a check was added next to a sink" is how many security
fixes look. Without a guard, only a sink or security API (not vocabulary) within two lines
of a changed line counts, a quarter of its weight. A function whose name names a security
concern (``signals.SECURITY_FUNCTION``) counts as the weak category ``security-function``.
Untrusted input read from a request (category ``input-source``)
counts its full weight on such context lines: a check added next to it is input validation
around untrusted data. A category counts once per diff (its strongest match); the
diff's score is the sum over categories, compared with a gate rule's
``min_pattern_score`` (0.5 in the default policy: one medium signal or two weak ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.security.literals import required_literals

ANY = "*"


@dataclass(frozen=True)
class Pattern:
    id: str
    category: str
    languages: tuple[str, ...]  # ("*",) = every code file
    regex: re.Pattern[str]
    weight: float
    lower: bool  # case-insensitive: search the lower-cased text
    literals: tuple[str, ...] | None = None  # every match holds one (see literals.py)


def _top_level_alternatives(rx: str) -> list[str]:
    """``rx`` split at the ``|`` that are outside groups and character classes."""
    parts, depth, in_class, start, i = [], 0, False, 0, 0
    while i < len(rx):
        ch = rx[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1 if rx[i + 1 : i + 2] != "]" else 2
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(rx[start:i])
            start = i + 1
        i += 1
    parts.append(rx[start:])
    return parts


def _factor_word_boundary(rx: str) -> str:
    """``\\ba|\\bb|c`` as ``\\b(?:a|b)|c``: the same language, but Python's regex engine can
    then skip quickly to where a match may start (several times faster on long texts)."""
    alts = _top_level_alternatives(rx)
    bounded = [a[2:] for a in alts if a.startswith("\\b")]
    if len(bounded) < 2:
        return rx
    rest = [a for a in alts if not a.startswith("\\b")]
    return "|".join([r"\b(?:" + "|".join(bounded) + ")", *rest])


def _p(pid: str, category: str, langs: str, rx: str, weight: float = 1.0) -> Pattern:
    lower = pid.endswith("/i")
    if lower:  # matched against folded text (see scan._fold): lower case, camelCase split by "_"
        assert not re.search(r"\\[A-Z]|(?<![\\])[a-z0-9][A-Z]", rx), pid  # write folded names
        rx = rx.lower()

    regex = re.compile(_factor_word_boundary(rx))
    return Pattern(pid.removesuffix("/i"), category, tuple(langs.split(",")), regex, weight, lower,
                   required_literals(regex))


PATTERNS: tuple[Pattern, ...] = (
    # --- command execution and code evaluation ------------------------------------
    _p("py.subprocess", "command", "python",
       r"\bsubprocess\.\w+|\bos\.(system|popen|exec\w*|spawn\w*)\(|shell\s*=\s*True|\bpty\.spawn"),
    _p("py.eval", "code-eval", "python",
       r"(?<![.\w])(?<!def )(eval|exec|compile)\(|__import__\("),
    _p("js.child-process", "command", "javascript",
       # a bare call or one on the module (``cp.exec``), not a method such as ``regex.exec(``
       r"child_process|(?<![.\w])(exec|spawn)(File)?(Sync|Async)?\(|(?<![.\w])fork\("
       r"|\b(cp|childProcess|child_process)\.(exec|spawn|fork)\w*\(|shell:\s*true"),
    _p("js.eval", "code-eval", "javascript",
       r"(?<![.\w])eval\(|new Function\(|\bvm\.run\w*|setTimeout\(\s*['\"`]|\.runInContext"),
    _p("go.exec", "command", "go", r"\bexec\.Command(Context)?\(|\bsyscall\.Exec\b"
       r"|\"(ba)?sh\",\s*\"-c\""),
    _p("any.shell-quote", "command", ANY, r"\bshlex\.(quote|split)|shell-?quote|escapeshellarg"),
    # --- SQL built from strings ---------------------------------------------------
    _p("py.sql-raw", "sql", "python", r"\.(raw|extra)\(|\bRawSQL\(|cursor\(\)\.execute"
       r"|\.executescript\("),
    _p("js.sql", "sql", "javascript", r"\.query\(\s*[`'\"]\s*(SELECT|INSERT|UPDATE|DELETE)"
       r"|sequelize\.literal"),
    _p("go.sql", "sql", "go", r"\.(Query|QueryRow|Exec)(Context)?\(\s*(fmt\.Sprintf|\w+\s*\+)"),
    _p("any.sql-concat", "sql", ANY,
       r"[\"'`]\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b[^\"'`\n]*[\"'`]\s*(\+|%\s*\(?\w"
       r"|\.format\()"),
    # --- deserialisation ------------------------------------------------------------
    _p("py.deserialize", "deserialization", "python",
       r"\b(pickle|cPickle|marshal|shelve|dill|jsonpickle)\.(loads?|Unpickler)|yaml\.(load"
       r"|unsafe_load)\("
       r"|\bLoader\s*=\s*yaml\.(Loader|UnsafeLoader|FullLoader)"),
    _p("js.deserialize", "deserialization", "javascript",
       r"\bunserialize\(|node-serialize|serialize-javascript|\byaml\.load\(|\bfuncster\b"),
    _p("go.deserialize", "deserialization", "go", r"\bgob\.NewDecoder|\byaml\.Unmarshal\b"),
    _p("any.xml-entities", "xml", ANY,
       r"<!ENTITY|<!DOCTYPE|resolve_entities|XMLParser\(|defusedxml|\bexpat\b|DTDLoad|noent"),
    # --- prototype pollution and unsafe property access (JavaScript) ---------------
    _p("js.prototype", "prototype-pollution", "javascript",
       r"__proto__|\bconstructor\b\s*[\]\.'\"]|\bprototype\b|Object\.create\(null\)"
       r"|hasOwnProperty|getOwnPropertyNames|Object\.freeze|Object\.hasOwn\(|Object\.setPrototypeOf\("),
    # --- paths and files ---------------------------------------------------------------
    _p("py.path", "path", "python",
       r"\bos\.path\.(realpath|abspath|normpath|commonpath|islink)\(|\bsafe_join\(|\bsend_file\("
       r"|\bsend_from_directory\(|\.resolve\(\)\.is_relative_to|\bis_relative_to\("
       r"|\bsecure_filename\("
       r"|\btarfile\.|\bzipfile\.|\.extractall\(|\bos\.symlink\(|\bshutil\.(rmtree|move"
       r"|copy\w*)\("),
    _p("js.path", "path", "javascript",
       r"\bpath\.(resolve|normalize|join|relative|isAbsolute)\(|\bfs\.\w+\(|\.createReadStream\("
       r"|\bsendFile\(|\bres\.download\(|\bzip|\btar\b"),
    _p("go.path", "path", "go",
       r"\bfilepath\.(Clean|Abs|Rel|EvalSymlinks|Join|IsAbs|IsLocal|Base|Dir)\(|\bpath\.Clean\("
       r"|\bsecurejoin\b"
       r"|\bos\.(Open|OpenFile|Create|Remove|RemoveAll|Mkdir|MkdirAll|Symlink|Readlink|WriteFile"
       r"|ReadFile|Rename|Chdir)\(|\bioutil\.(ReadFile|WriteFile)\(|\bhttp\.(Dir|ServeFile)\("
       r"|\btar\.|\bzip\."),
    _p("any.dotdot", "path", ANY, r"['\"`]\.\.(/|\\\\|['\"`])|\.\.[/\\\\]\.\.|%2e%2e"
       r"|\bdirectory traversal"),
    # --- authentication, authorisation, sessions ---------------------------------------
    # Identifier-aware: also inside names (checkPermission, is_authenticated, userRoles).
    _p("any.auth/i", "auth", ANY,
       r"(?<![a-z])(authenticat\w*|authoriz\w*|unauthori[sz]ed|forbidden|permission\w*|perms?"
       r"|has_?perm\w*|is_?superuser|is_?staff|is_?admin|login_?required|require_?auth\w*"
       r"|access_?control|privilege\w*|csrf\w*|xsrf|same_?site|http_?only|set_?cookie|session_?id"
       r"|jwt|oauth\w*|saml|bearer|credential\w*|secrets?|passw(or)?d\w*|api_?key|otp|mfa|2fa|acl|rbac"
       r"|is_?owner|owner_?id|ownership|check_?access|can_?access|basic_?auth|www-authenticate"
       r"|is_?allowed|allowed_?(users?|groups?|roles?))(?![a-z])"),
    # Roles, scopes, grants and tenants name access rules, but also reST roles, fixture scopes
    # and variable scopes: weak alone.
    _p("any.auth-words/i", "auth-words", ANY,
       r"(?<![a-z])(roles?|scopes|grants?|tenant\w*)(?![a-z])", 0.25),
    _p("go.auth", "auth", "go", r"\bStatus(Unauthorized|Forbidden)\b|\bErrPermission\b"
       r"|\.Permission\b"),
    _p("py.auth-errors", "auth", "python", r"\b(PermissionDenied|SuspiciousOperation|Forbidden)\b"),
    # --- cryptography and randomness ------------------------------------------------------
    _p("py.crypto", "crypto", "python",
       r"\bhashlib\.|\bhmac\.|\bcompare_digest\(|\bconstant_time_compare\(|\bsecrets\.|\bCrypto\."
       r"|\bcryptography\.|\bssl\.|verify\s*=\s*False|\bcheck_hostname\b|\bCERT_NONE\b"),
    _p("any.signing/i", "crypto", ANY,
       r"\b(verify_?signature|(bad|invalid)_?signature|signature_?(mismatch|invalid|valid\w*)|nonce|salt|hmac|digest|cipher|private_?key"
       r"|public_?key|certificate|signing_?method\w*|bcrypt|argon2\w*|scrypt|pbkdf2\w*)\b"
       # "algorithm" alone is everywhere in numeric code; only a signing/hash algorithm counts
       r"|\b(jwt|hash\w*|sign\w*|crypt\w*|digest|cipher)_?algorithms?\b"
       # a signature compared or checked, not a function's signature (inspect.signature)
       r"|\bsignatures?\s*(!==?|===?|[:=]\s*(hmac|sign|b64|base64))"
       r"|\balgorithms?\s*[=:]\s*\[?\s*['\"](hs|rs|es|ps|sha|md5|aes|none|eddsa)"),
    _p("js.crypto", "crypto", "javascript",
       r"\bcrypto\.|\bcreate(Hash|Hmac|Cipher\w*|Decipher\w*)\(|\btimingSafeEqual\(|\brandomBytes\("
       r"|\bbcrypt|\bscrypt|\bpbkdf2|rejectUnauthorized"),
    _p("go.crypto", "crypto", "go",
       r"\bcrypto/\w+|\b(subtle\.ConstantTimeCompare|hmac\.\w+|sha256\.|sha1\.|md5\.|rand\.Read"
       r"|aes\.|rsa\.|"
       r"ecdsa\.|ed25519\.|x509\.|tls\.Config)|InsecureSkipVerify"),
    _p("any.weak-hash/i", "crypto", ANY, r"\b(md5|sha1|des|rc4|ecb)\b\s*\("),
    # --- redirects, URLs, requests to other hosts -------------------------------------------
    _p("any.redirect/i", "redirect", ANY,
       r"\b\w*redirect\w*\(|\bredirect_?(to|uri|url)\b|['\"]Location['\"]|\bnext_?url\b"
       r"|\breturn_?(to|url)\b|url_has_allowed_host_and_scheme|is_safe_url|allowed_hosts"
       # redirect responses by class or status name (aiohttp, pyramid/webob, Go's net/http)
       r"|\b(http_?|status_?)(found|see_?other|moved_?permanently|(temporary|permanent)_?redirect)\b"),
    _p("any.url-scheme/i", "url", ANY,
       r"['\"`](javascript|vbscript|data|file):|\.protocol\b|\bprotocol\s*(!==?|===?|\bin\b)|\bscheme\b.*(http|==|in)"
       r"|\burlparse\(|\bnew URL\("
       r"|\burl\.Parse\(|\bhostname\b|\burlsplit\(|\burl\.parse_request_uri\("),
    # --- templating, escaping, output encoding ---------------------------------------------
    _p("py.escape", "escaping", "python",
       r"\bmark_safe\(|\|\s*safe\b|\bformat_html\(|\bconditional_escape\(|\bhtml\.escape\("
       r"|(?<!re\.)\bescape\("
       r"|\bMarkup\(|\bautoescape\b|\bbleach\.|\bxmlattr|\bstriptags\b|\bescapejs\b"),
    _p("js.escape", "escaping", "javascript",
       r"\.innerHTML\b|dangerouslySetInnerHTML|\bv-html\b|\.html\(|\bdocument\.write\("
       r"|\bescape\w*\("
       r"|\bsanitiz\w*\(|DOMPurify|\bencodeURI(Component)?\(|\bunescape\(|&lt;|&gt;|&quot;|&#"),
    _p("go.escape", "escaping", "go",
       r"\btemplate\.(HTML|JS|URL|HTMLAttr)\(|\bhtml\.EscapeString\(|\burl\.(Path|Query)Escape\("
       r"|bluemonday"),
    _p("any.sanitize/i", "escaping", ANY, r"\bsanitiz\w*|\bescape_?html|\bxss\b|\bstrip_?tags"),
    _p("go.template", "escaping", "go", r"\btemplate\.New\(|\.Funcs\(|\bFuncMap\b"),
    _p("any.char-filter", "escaping", ANY,
       r"\\x00|\\u0000|\\u\{0\}|\\0\b|null byte|\.replace(All)?\(\s*/[^/\n]*(['\"<>`]|\\\\)"
       r"|\.replace\(\s*['\"](<|>|&|\\\\|'|\")"),
    # --- prefix checks on paths and URLs (containment, origin, scheme) ---------------------
    _p("any.prefix-check/i", "containment", ANY,
       r"(path|url|uri|dir|directory|folder|root|base|host|hostname|origin|scheme|protocol|href"
       r"|dest|target|location|file|filename|name|key|prefix|domain|src)\w*(\(\))?\??\."
       r"(starts_?with|ends_?with|has_?prefix|has_?suffix)\(|strings\.(has_?prefix|has_?suffix|trim_?prefix)\("
       r"\s*\w*(path|url|uri|dir|root|base|host|origin|name|file|target|dest)"
       r"|(starts_?with|ends_?with)\([^)\n]*(['\"]/|['\"]\.\.|os\.sep|['\"]https?:|\.\.)", 0.5),
    _p("any.links/i", "path", ANY,
       r"(?<![a-z])(hard_?links?|sym_?links?|readlink|lstat|islink|is_symbolic_link"
       r"|eval_symlinks|o_nofollow|link_?target|link_?name|linkpath)(?![a-z])"),
    # --- input rejected with a security-flavoured message --------------------------------------
    _p("any.reject-message/i", "validation", ANY,
       r"((raise|throw|Errorf?|errors\.New|Error)\b|\b(message|msg)\s*=)"
       r".*['\"`][^'\"`\n]*\b(invalid|not allowed"
       r"|disallowed|forbidden|illegal|malformed|unsafe|untrusted|denied|refus\w*|outside|escap\w*"
       r"|too (long|large"
       r"|many|deep|big))\b", 0.25),
    # --- HTTP parsing: headers, framing, upgrades ---------------------------------------------
    _p("any.http-framing/i", "http", ANY,
       r"\b(content-length|transfer-encoding|chunked|crlf|hijack\w*|upgrade|host header"
       r"|x-forwarded-\w+)\b|\\r\\n", 0.5),
    # --- permissions, ownership, privileges ------------------------------------------------
    _p("any.file-mode", "permissions", ANY,
       r"\b(os\.)?(chmod|chown|umask|setuid|setgid|Chmod|Chown|Setuid|Setgid)\("
       r"|\b0o?[0-7]{3}\b.*(mode|perm)"
       r"|\bO_CREAT|\bos\.FileMode\(|\bstat\.S_I\w+"),
    # --- denial of service: unbounded input, regexes ---------------------------------------
    _p("any.limits/i", "resource-limits", ANY,
       r"\bmax_?(size|length|len|bytes|depth|body|request|upload|field|header)\w*|\blimit_reader\b"
       r"|\bmax_bytes_reader\b|\bbody_?limit|\brecursion_?limit|\bre_?do_?s\b", 0.25),
    # --- privilege: running as root, account state ------------------------------------------
    _p("any.privilege/i", "auth", ANY,
       r"\b(e?uid|getuid\(\)|geteuid\(\))\s*[!=]=\s*0\b|\bis_?root\b|\bsudo\b|\bsetuid\b|\bdrop_?priv"
       r"|\b(account|user|member)\.(enabled|disabled|is_?active|locked|expired|is_?admin)\b"),
    # --- regular expressions used to validate input --------------------------------------------
    _p("any.regex", "regex", ANY,
       r"\bre\.(compile|match|fullmatch|search|escape)\(|\bregexp\.QuoteMeta\("
       r"|\bregexp\.(MustCompile|Compile)\(|\bnew RegExp\("
       r"|=\s*r?['\"]\^|=\s*/\^"
       # a regex literal tested against a value (JavaScript)
       r"|/\^[^/\n]*/[gimsuy]*\.test\(|\.match\(\s*/\^", 0.25),
    # --- network listeners and SSRF -----------------------------------------------------
    _p("go.ip", "ssrf", "go",
       r"\bip\.(Is\w+|To4|To16)\(|\bnet\.(ParseIP|ParseCIDR|LookupIP|LookupHost)\(|\bIsUnspecified\("),
    _p("py.ip", "ssrf", "python",
       r"\bipaddress\.|\bsocket\.(getaddrinfo|gethostbyname|inet_aton)\(|\.is_(private|loopback"
       r"|link_local|reserved|multicast|unspecified)\b"),
    _p("js.ip", "ssrf", "javascript", r"\bipaddr\b|\bnet\.isIP\w*\(|\bdns\.lookup\("),
    _p("any.ssrf/i", "ssrf", ANY,
       r"\bssrf\b|\bprivate_?ip|\bis_private\b|\bloopback|\b169\.254\.|\blink-?local"
       r"", 1.0),
    # --- vocabulary in code or comments -------------------------------------------------
    _p("any.security-words/i", "security-words", ANY,
       r"(?<![a-z])(not safe|not allowed|security|vulnerab\w*|malicious|attacker|untrusted"
       r"|injection|(path|directory) traversal|exploit\w*"
       r"|unsafe|insecure|sanitiz\w*|whitelist|allowlist|blocklist|blacklist"
       r"|bypass\w*|spoof\w*|tamper\w*|forgery|impersonat\w*|smuggl\w*|xss|ssrf|xxe|rce"
       r"|denial of service|toctou|zip_?slip|privilege escalation|arbitrary (code|command|file)s?"
       r")(?![a-z])", 0.5),
    # --- server-side template injection: templates built from strings ----------------------
    _p("py.template-injection", "template-injection", "python",
       r"\brender_template_string\(|\.from_string\(|\bSandboxedEnvironment\b|\bjinja2\.Template\("
       r"|\bTemplate\([^)\n]*\)\.render\("),
    _p("js.template-injection", "template-injection", "javascript",
       r"\b(ejs|pug|jade|handlebars|Handlebars|nunjucks|mustache|Mustache|dot|doT|_|lodash)"
       r"\.(render|compile|template|renderString)\w*\("),
    # --- dynamic lookups of globals and attributes by a runtime name -----------------------
    _p("js.global-lookup", "code-eval", "javascript",
       r"\b(global|globalThis|GLOBAL|window|self)\s*\[\s*[\w.$]+\s*\]|\brequire\(\s*[\w.$]+\s*\)"),
    _p("py.dunder", "code-eval", "python",
       r"__(globals|builtins|subclasses|reduce|reduce_ex|getattribute)__"
       r"|\bstartswith\(\s*['\"]__?['\"]\s*\)", 0.5),
    # --- files whose exposure is a breach, and search paths an attacker can write ----------
    _p("any.sensitive-files", "path", ANY,
       r"['\"`][^'\"`\n]*(\.git[/\\.'\"`]|\.ssh\b|/etc/(passwd|shadow|sudoers)|\.htaccess"
       r"|authorized_keys|id_rsa)|\b(os\.PathSeparator|filepath\.Separator)\b", 0.5),
    _p("any.search-path", "permissions", ANY,
       r"\b(LD_PRELOAD|LD_LIBRARY_PATH|DYLD_\w+|PYTHONPATH|NODE_OPTIONS|NODE_PATH)\b"
       r"|\.(insert|append|extend|unshift|push)\([^)\n]*(\bos\.getcwd\(\)|\bprocess\.cwd\(\)"
       r"|\bos\.Getwd\(\))|\bsys\.path\.(insert|append)\(", 0.5),
    # --- sandboxing and mandatory access control policies ----------------------------------
    _p("any.sandbox/i", "permissions", ANY,
       r"(?<![a-z])(apparmor|seccomp|selinux|deny|allow_?privilege_?escalation"
       r"|privileged|run_?as_?(user|non_?root|root)|security_?context|host_?(path|network|pid|ipc)"
       r"|cap_(sys|net|dac)_\w+|no_?new_?privs|node_?integration|context_?isolation"
       r"|web_?security)(?![a-z])"),
    # --- browser-side security headers, origins and storage ----------------------------------
    _p("any.web-headers/i", "http", ANY,
       r"access-control-allow-\w+|(?<![a-z])(cors|allowed_?origins?|check_?origin|x-frame-options"
       r"|content-security-policy|x-content-type-options|strict-transport-security|nosniff"
       r"|referrer-policy|noopener|noreferrer|post_?message|document\.cookie)(?![a-z])"),
    # --- decoding and normalisation before a check (double decoding, unicode tricks) -------
    _p("any.decode/i", "url", ANY,
       r"(?<![a-z])(unquote\w*|url_?unquote|decode_?uri(_?component)?|path_?unescape"
       r"|query_?unescape|unescape)\(|\bunicodedata\.normalize\(|\.normalize\(\s*['\"]nfk?[cd]",
       0.5),
    # --- regular expressions that backtrack: nested quantifiers --------------------------
    _p("any.redos", "regex-dos", ANY, r"[+*?]\)[+*{]|[+*]\)\?[+*]|\(\.\*\)\{|\(\.\+\)\+", 0.5),
    # --- untrusted input read from a request: weak alone, stronger next to an added check --
    _p("py.request-input", "input-source", "python",
       r"\brequest\.(args|form|values|GET|POST|FILES|headers|cookies|json|data|query_params"
       r"|get_json|get_data|body|META)\b", 0.25),
    _p("js.request-input", "input-source", "javascript",
       r"\breq\.(query|body|params|headers|cookies|files|url|originalUrl|path)\b"
       r"|\blocation\.(hash|search|href)\b|\bevent\.(data|origin)\b", 0.25),
    _p("go.request-input", "input-source", "go",
       r"\.(FormValue|PostFormValue|FormFile|Cookie|Param|Query|PostForm|DefaultQuery)\("
       r"|\.URL\.(Query|Path|RawQuery)\b|\bHeader\.Get\(|\bmux\.Vars\(", 0.25),
    # --- checks on the type or shape of untrusted values (type confusion) ------------------
    _p("js.type-check", "type-check", "javascript",
       r"\btypeof\s+[\w.$\[\]'\"]+\s*!==?\s*['\"](string|number|object|function|boolean)"
       r"|\bArray\.isArray\(|\bNumber\.is(Safe)?Integer\(", 0.25),
    _p("any.validate-call/i", "validation-call", ANY,
       r"(?<![a-z])(validate|validator|is_?valid|check_?valid\w*|verify)\w*\(", 0.25),
    # --- bounds: lengths and sizes compared before use (Go panics, memory exhaustion) -------
    _p("go.bounds", "resource-limits", "go",
       r"\blen\([^)\n]*\)\s*[<>]=?|[<>]=?\s*len\(|\bmath\.Max(Int|Uint)\w*|\bMaxBytesReader\b"
       r"|\bio\.LimitReader\b|\bRead(Header)?Timeout\b|\bMaxHeaderBytes\b", 0.25),
    _p("js.memory", "resource-limits", "javascript",
       r"\ballocUnsafe\w*\(|\bnew Buffer\(|\bmaxBuffer\b|\bmaxFileSize\b|\blimits?\s*:", 0.5),
    _p("any.length-limit/i", "resource-limits", ANY,
       r"(?<![a-z])(max_?length|maxlength|min_?length|max_?len)\s*[=:]|\blength\(\s*max\s*="
       r"|\bmax\s*=\s*\d{2,}", 0.25),
    _p("any.temp-files", "permissions", ANY,
       r"\bmktemp\(|\btempfile\.|\bos\.tmpdir\(|\bioutil\.Temp(File|Dir)\(|\bos\.(CreateTemp"
       r"|MkdirTemp)\(|['\"`]/tmp/", 0.5),
    _p("any.rate-limit/i", "resource-limits", ANY,
       r"(?<![a-z])(rate_?limit\w*|throttl\w*|brute_?force|lockout|max_?attempts)(?![a-z])", 0.5),
    _p("any.tokens/i", "auth", ANY,
       r"(?<![a-z])(access|refresh|csrf|auth|reset|session|api|bearer|id|verification)_?tokens?"
       r"(?![a-z])|(?<![a-z])(redact\w*|obfuscat\w*)(?![a-z])"),
    _p("any.cookie-flags/i", "auth", ANY,
       r"(?<![a-z])(secure|http_?only)\s*[:=]\s*(true|false)|\bsame_?site\b"),
    # --- third round: per-language gaps filled from general knowledge --------------------
    # Argument injection: "--" ends a command's options before untrusted arguments, and a
    # value starting with "-" is refused as an option.
    _p("any.option-injection", "command", ANY,
       r",\s*['\"`]--['\"`]\s*[,\])]|\[\s*['\"`]--['\"`]\s*,"
       r"|\.(push|append|unshift|concat)\(\s*['\"`]--['\"`]"
       r"|(startswith|startsWith|HasPrefix)\([^)\n]*['\"`]-['\"`]\s*\)"),
    # SQL text built by interpolation (Go format verbs, JS template literals, f-strings) and
    # query builders' raw-SQL entry points.
    _p("go.sql-format", "sql", "go",
       r"\bSprintf\(\s*\"[^\"\n]*\b(SELECT|INSERT|UPDATE|DELETE|WHERE|ORDER BY)\b[^\"\n]*%[sv]"
       r"|\.(Raw|Where|Order|Having|Select|Joins)\(\s*(fmt\.Sprintf|\w+\s*\+)"),
    _p("js.sql-format", "sql", "javascript",
       r"`[^`\n]*\b(SELECT|INSERT|UPDATE|DELETE|WHERE|ORDER BY)\b[^`\n]*\$\{"
       r"|\.(raw|whereRaw|orderByRaw|havingRaw|joinRaw)\(|\bescapeId\(|\bsqlstring\b"
       r"|\bmysql\.escape\(|\bpg-format\b"),
    _p("py.sql-format", "sql", "python",
       r"\bf['\"][^'\"\n]*\b(SELECT|INSERT|UPDATE|DELETE|WHERE|ORDER BY)\b[^'\"\n]*\{"),
    # JavaScript: more command runners, HTML sinks and code sandboxes.
    _p("js.sinks-more", "command", "javascript",
       r"\bexeca\b|cross-spawn|\bshelljs\b|\bshell\.exec\("),
    _p("js.html-sinks", "escaping", "javascript",
       r"\binsertAdjacentHTML\(|\.outerHTML\b|\.srcdoc\b|\bcreateContextualFragment\("),
    _p("js.sandbox", "code-eval", "javascript",
       r"\bvm2\b|safe-eval|static-eval|\bnew\s+(vm\.)?Script\(|\bcompileFunction\("),
    # Go: file serving, import of the unescaped template package, escaping helpers, command
    # lookup on PATH, integers parsed into narrow types.
    _p("go.serve", "path", "go",
       r"\bhttp\.(FileServer|StripPrefix)\(|\bfs\.ValidPath\(|\bfilepath\.(VolumeName|FromSlash"
       r"|ToSlash)\("),
    _p("go.template-pkg", "escaping", "go",
       r"\"(text|html)/template\"|\btemplate\.(HTMLEscape\w*|JSEscape\w*|URLQueryEscaper)\("),
    _p("go.lookpath", "permissions", "go", r"\bexec\.LookPath\(", 0.5),
    _p("go.int-parse", "integer", "go",
       r"\bstrconv\.Parse(Int|Uint)\([^)\n]*,\s*(8|16|32)\s*\)|\bmath\.(Max|Min)(Int|Uint)(8|16|32)\b",
       0.5),
    # Requests to other hosts chosen at run time (SSRF), Go's dialers.
    _p("go.dial", "ssrf", "go", r"\bnet\.Dial\w*\(|\bDialContext\b|\bCheckRedirect\b", 0.5),
    # Deserialisation of model and array files (pickle underneath).
    _p("py.pickle-files", "deserialization", "python",
       r"\btorch\.load\(|\bjoblib\.load\(|\ballow_pickle\b|\bweights_only\b"),
    # Decompression without a bound (zip bombs).
    _p("any.decompress", "resource-limits", ANY,
       r"\b(gzip|zlib|bz2|lzma|brotli|zstd|flate)\.(decompress\w*|NewReader|GzipFile|inflate\w*"
       r"|gunzip\w*|createGunzip|createInflate\w*)\b", 0.5),
    # Authorisation: the current user, and ownership compared with it.
    _p("any.current-user/i", "auth", ANY,
       r"\b(request|req|ctx|c|g)\.(user|session)\b|(?<![a-z])(current_?user|(user|owner|author"
       r"|creator|account|org|organization|tenant|team)_?(id|uuid)?\s*(!==?|===?)(?!=))", 0.5),
    # Allow and deny lists named as such (hosts, schemes, extensions, types, ...).
    _p("any.allowlist/i", "validation", ANY,
       r"(?<![a-z])(allowed|permitted|whitelisted|blacklisted|blocked|forbidden|denied|trusted"
       r"|safe)_(hosts?|schemes?|protocols?|extensions?|types?|methods?|domains?|origins?|keys?"
       r"|tags?|attr\w*|commands?|paths?|dirs?|chars?|characters|names?|urls?|ips?|ports?"
       r"|fields?|headers?|mime\w*|modules?|functions?|props?|properties)(?![a-z])", 0.5),
    # Authorisation checks named for what they grant, sessions renewed or ended, and
    # responses that refuse access.
    _p("any.authz-names/i", "auth", ANY,
       r"(?<![a-z])((can|may)_(read|write|edit|delete|view|manage|access|update|modify|create"
       r"|push|pull|execute|invite|admin\w*)|(is|has)_(member|owner|admin\w*|access|role|rights?"
       r"|permissions?)|require_?(admin|owner|role|permission\w*|scope\w*|user|login)"
       # sessions renewed or ended (fixation, logout)
       r"|session_?(regenerate|rotate|invalidate|destroy|fixation|flush)|cycle_key"
       r"|regenerate_?id)(?![a-z])"
       r"|\b(abort|status|status_code|code)\s*[(=:]\s*40[13]\b"),
    # Go: interpreters and plugins that run code chosen at run time; JS: dynamic import.
    _p("go.code-eval", "code-eval", "go",
       r"\b(goja|otto|yaegi|govaluate|expr)\.(New|Run|Eval|Compile)\w*\(|\bplugin\.Open\("),
    _p("js.dynamic-import", "code-eval", "javascript", r"(?<![.\w])import\(\s*[\w.$]+\s*\)"),
    _p("go.read-all", "resource-limits", "go", r"\b(io|ioutil)\.ReadAll\(", 0.25),
    # --- fourth round: a reviewer's checklist per category and language ------------------
    # SQL: statements executed from formatted text, and the query builders' literal escapes.
    _p("py.sql-api", "sql", "python",
       r"\.execute(many)?\(\s*(f['\"]|[^,()\n]*\s%\s*\(?\w|[^,()\n]*\.format\()"
       r"|\bliteral_column\(|\bsql\.(SQL|Identifier|Literal)\(|\btext\(\s*f['\"]"),
    _p("js.sql-api", "sql", "javascript",
       r"\bsequelize\.query\(|\breplacements\s*:|\bknex\.raw\(|\.unsafe\(\s*`"),
    _p("go.sql-quote", "sql", "go",
       r"\bpq\.Quote(Identifier|Literal)\(|\bsq\.Expr\(|\bsqlx\.Rebind\b"),
    # Commands: asynchronous and remote runners.
    _p("py.command-more", "command", "python",
       r"\bcreate_subprocess_(shell|exec)\(|\bpexpect\.(spawn|run)\(|\.exec_command\("
       r"|\bcommands\.getoutput\("),
    _p("js.eval-more", "code-eval", "javascript", r"\bsetInterval\(\s*['\"`]"),
    # Modules imported by a name chosen at run time (weak: plugin loaders do it too).
    _p("py.dynamic-import", "code-import", "python", r"\bimportlib\.import_module\(", 0.25),
    # LDAP and XPath queries: filters and expressions built from input, and their escapers.
    _p("any.ldap-xpath", "ldap-xpath", ANY,
       r"\bldap3?\.\w+|\bescape_(filter|dn)_chars\(|\.search_s\(|\bldapjs\b|ldap-escape"
       r"|\bEscape(Filter|DN)\(|['\"`]\(&?\(?(uid|cn|sAMAccountName|userPrincipalName|mail"
       r"|memberOf|objectClass)="
       r"|\.xpath\(|\betree\.XPath\(|\bxpath\.(select|evaluate|parse|Compile)\w*\("
       r"|\bdocument\.evaluate\(|\bXPathResult\b|\b(xmlquery|htmlquery)\."),
    # XML parsers (entities, DTDs, network access) and their hardening switches.
    _p("py.xml-parse", "xml", "python",
       r"\bminidom\.parse\w*\(|\b(ET|ElementTree|etree|cElementTree)\.(fromstring|parse|XML"
       r"|iterparse)\(|\bxml\.sax\.|\bpulldom\.|\bfeature_external_\w+|\bload_dtd\b"
       r"|\bno_network\b|\bhuge_tree\b", 0.5),
    _p("js.xml-parse", "xml", "javascript",
       r"\bDOMParser\b|\bxml2js\b|fast-xml-parser|\bprocessEntities\b|\blibxmljs\w*\b"
       r"|\bxmldom\b|\bsax\.parser\(", 0.5),
    _p("go.xml-parse", "xml", "go", r"\bxml\.(NewDecoder|Unmarshal)\(|\"encoding/xml\"", 0.5),
    # Deserialisation of data frames and saved models.
    _p("py.pickle-more", "deserialization", "python",
       r"\bread_pickle\(|\bcloudpickle\.\w+|\bsafe_mode\b|\bload_model\([^)\n]*safe"),
    # Files served or confined: Django file responses, Go's rooted file access.
    _p("py.serve", "path", "python",
       r"\bFileResponse\(|\bdjango\.views\.static\b|\bstatic\.serve\b"),
    _p("go.root", "path", "go", r"\bos\.(OpenInRoot\(|OpenRoot\(|Root\b)"),
    _p("any.basename", "path-hint", ANY,
       r"\b(os\.path|path|posixpath|ntpath)\.basename\(", 0.25),
    _p("any.archive-entries", "path", ANY,
       r"\b(Typeflag|TypeSymlink|TypeLink|Linkname)\b|\bhdr\.Name\b|\.getmembers\(\)"
       r"|\bZipInfo\b|\.namelist\(\)"),
    # Randomness: secure sources, and the predictable ones that tokens must not use.
    _p("py.random-secure", "crypto", "python", r"\bos\.urandom\(|\bSystemRandom\b"),
    _p("any.random-weak", "randomness", ANY,
       r"\bMath\.random\(|\"math/rand\"|\brandom\.(random|randint|choice|getrandbits)\(",
       0.25),
    # Requests to hosts chosen at run time (SSRF sinks); weak alone, everyday client code.
    _p("py.outbound", "outbound-request", "python",
       r"\brequests\.(get|post|put|patch|delete|head|request)\(|\burlopen\(|\burllib\.request\."
       r"|\bhttpx\.(get|post|request|stream|Client|AsyncClient)\b|\baiohttp\.ClientSession\b"
       r"|\bpycurl\b", 0.25),
    _p("js.outbound", "outbound-request", "javascript",
       r"\baxios(\.\w+)?\(|\bfetch\(|\bhttps?\.(get|request)\(|\bgot(\.\w+)?\("
       r"|\bneedle\(|\bsuperagent\b|\bnode-fetch\b", 0.25),
    _p("go.outbound", "outbound-request", "go",
       r"\bhttp\.(Get|Post|Head|PostForm|NewRequest\w*)\(", 0.25),
    _p("go.proxy", "ssrf", "go", r"\bhttputil\.(NewSingleHostReverseProxy|ReverseProxy)\b", 0.5),
    # Redirect targets taken from the request, and client-side navigation.
    _p("any.redirect-param/i", "redirect", ANY,
       r"\.get\(\s*['\"](next|redirect\w*|return_?to|return_?url|goto|continue_?url)['\"]", 0.5),
    _p("js.navigation", "redirect", "javascript",
       r"\blocation\.(assign|replace)\(|\b(window\.)?location(\.href)?\s*=[^=]|\bwindow\.open\(",
       0.5),
    # Output written into HTML from the request, and renderers that pass raw HTML through.
    _p("js.reflect", "escaping", "javascript",
       r"\bres\.(send|write|end)\([^)\n]*(\$\{|\breq\.)|\bhtml\s*:\s*true\b"),
    _p("any.web-more/i", "http", ANY, r"(?<![a-z])(helmet|content-disposition)(?![a-z])", 0.5),
    # Prototype pollution: deep merges and path setters (JavaScript), and keys copied one by one.
    _p("js.merge", "prototype-pollution", "javascript",
       r"\b(_|lodash)\.(merge\w*|set\w*|defaultsDeep|zipObjectDeep|extend)\(|\bdeep-?merge\b"
       r"|\b(deepExtend|mergeDeep|deepMerge|setPath|setValue|dotProp)\b|\bdot-prop\b"
       r"|\bset-value\b"),
    _p("js.key-copy", "dynamic-key", "javascript",
       r"\[\s*(key|k|prop|p|name|attr|segment|part|path\[\w+\])\s*\]\s*=[^=]", 0.25),
    # Sandboxes switched off, search paths changed.
    _p("any.no-sandbox/i", "permissions", ANY,
       r"(?<![a-z])(no-?_?sandbox|sandbox(ed|ing)?|disable-?_?setuid-?_?sandbox)(?![a-z])", 0.5),
    _p("any.path-env", "permissions", ANY,
       r"\b(Setenv|putenv|environ\[?|env)\W{1,3}['\"]PATH['\"]", 0.5),
    # Request bodies bounded (denial of service).
    _p("any.body-limit/i", "resource-limits", ANY,
       r"(?<![a-z])(max_?bytes_?reader|limit_?reader|max_?header_?bytes|max_?content_?length"
       r"|data_?upload_?max\w*|file_?upload_?max\w*)(?![a-z])", 0.5),
    _p("go.unsafe", "memory", "go", r"\bunsafe\.(Pointer|Slice|String)\b", 0.5),
    # Who is signed in, and what access a user has.
    _p("any.signed-in/i", "auth", ANY,
       r"(?<![a-z])(is_?signed_?in|signed_?in|is_?logged_?in|logged_?in|access_?(mode|level|rights?)"
       r"|staff_member_required|user_passes_test)(?![a-z])", 0.5),
    # Template syntax that writes raw, unescaped output (Handlebars, EJS, Pug, Jinja, Go).
    _p("any.raw-output", "escaping", ANY,
       r"\{\{\{[^}\n]*\}\}\}|<%-|\|\s*safe\s*\}\}|autoescape\s+(false|off)\b"
       r"|\bSafeString\(|\bSafeData\b"),
    # Electron: URLs opened by the shell, navigation and window creation.
    _p("js.electron", "command", "javascript",
       r"\bshell\.openExternal\(|\bsetWindowOpenHandler\(|['\"]will-navigate['\"]"
       r"|\ballowRunningInsecureContent\b"),
    # Go's slash-path helpers (URL paths, archive entries) and comparisons of hosts.
    # HTML written into a response from formatted text (reflected XSS), and HTML built by
    # concatenation anywhere (weak: HTML writers do it too).
    _p("any.html-response", "escaping", ANY,
       r"(\bFprintf?\(\s*w\s*,|\bres\.(send|write|end)\(|\bHttpResponse\(|\bmake_response\()"
       r"\s*f?['\"`][^'\"`\n]*<[a-zA-Z/!][^\n]*(%[sv]|\$\{|\{\w*\}|['\"`]\s*\+|\s%\s)"),
    _p("any.html-build", "html-build", ANY,
       r"['\"`][^'\"`\n]*<[a-zA-Z][^'\"`\n]*['\"`]\s*\+\s*\w|\+\s*['\"`]</[a-zA-Z]"
       r"|`[^`\n]*<[a-zA-Z][^`\n]*\$\{", 0.25),
    # Kubernetes RBAC: roles, bindings and the verbs they grant.
    _p("any.k8s-rbac", "permissions", ANY,
       r"kubebuilder:rbac|\bClusterRole(Binding)?\b|\bRoleBinding\b|\bPolicyRule\b"
       r"|\bverbs\s*[:=]|\bServiceAccountName\b|\bautomountServiceAccountToken\b"),
    _p("go.path-more", "path", "go", r"\bpath\.(Join|Base|Dir|IsAbs|Split)\("),
    _p("any.host-check/i", "url", ANY,
       r"\.(host|hostname\(\)|host_?name|netloc|origin)\s*(!==?|===?|\bnot in\b|\bin\b)"
       r"|['\"](origin|referer)['\"]", 0.5),
)


def languages_match(pattern: Pattern, language: str | None) -> bool:
    return pattern.languages == (ANY,) or (language is not None and language in pattern.languages)
