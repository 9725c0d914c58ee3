"""The fourth round's reviewer checklist: one small synthetic added line per sink or
security API (it must escalate on its own, or score in its category), and ordinary lines
that share words with them (they must not escalate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.policy import Policy, load_policy
from orchestrator.router import gate_diff
from orchestrator.security.diff import parse_diff
from orchestrator.security.scan import has_guard, scan

NO_USER = Path("/nonexistent/policy.yaml")
FILES = {"py": "pkg/mod.py", "js": "lib/mod.js", "go": "pkg/mod.go", "html": "site/page.html"}


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy("default", user_path=NO_USER)


def one_line(lang: str, *added: str) -> str:
    path = FILES[lang]
    body = "".join(f"+{line}\n" for line in added)
    return (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1,1 +1,{1 + len(added)} @@\n x = 1\n{body}")


def scores(lang: str, *added: str) -> dict[str, float]:
    return scan(parse_diff(one_line(lang, *added)))[1]


SINKS = [
    ("py", 'rows = cur.execute(f"SELECT * FROM t WHERE id = {ident}")', "sql"),
    ("py", 'query = sql.SQL("SELECT {} FROM t").format(sql.Identifier(column))', "sql"),
    ("py", "stmt = select(Item).order_by(literal_column(order))", "sql"),
    ("js", "const rows = await sequelize.query(q, { replacements: [id] })", "sql"),
    ("go", "name := pq.QuoteIdentifier(column)", "sql"),
    ("py", "proc = await asyncio.create_subprocess_shell(cmd)", "command"),
    ("py", "stdin, stdout, stderr = client.exec_command(cmd)", "command"),
    ("js", "await shell.openExternal(link)", "command"),
    ("js", 'setInterval("poll()", 100)', "code-eval"),
    ("py", "conn.search_s(base, ldap.SCOPE_SUBTREE, query)", "ldap-xpath"),
    ("go", 'filter := fmt.Sprintf("(uid=%s)", ldap.EscapeFilter(user))', "ldap-xpath"),
    ("js", "const nodes = xpath.select(expr, doc)", "ldap-xpath"),
    ("py", "nodes = tree.xpath(expr)", "ldap-xpath"),
    ("py", "df = pd.read_pickle(path)", "deserialization"),
    ("py", "model = keras.models.load_model(path, safe_mode=True)", "deserialization"),
    ("py", 'return FileResponse(open(full_path, "rb"))', "path"),
    ("go", "f, err := os.OpenInRoot(dir, name)", "path"),
    ("go", "if hdr.Typeflag == tar.TypeSymlink {", "path"),
    ("go", "p := path.Join(prefix, name)", "path"),
    ("py", "key = os.urandom(32)", "crypto"),
    ("go", "proxy := httputil.NewSingleHostReverseProxy(target)", "ssrf"),
    ("py", 'target = request.GET.get("next")', "redirect"),
    ("js", "window.location.assign(target)", "redirect"),
    ("py", "raise web.HTTPFound(location)", "redirect"),
    ("go", "w.WriteHeader(http.StatusSeeOther)", "redirect"),
    ("js", "const { stdout } = await execFileAsync(bin, [arg])", "command"),
    ("js", "await execAsync(cmd)", "command"),
    ("js", "const child = cp.spawn(bin, args)", "command"),
    ("js", "res.send(`<p>${name}</p>`)", "escaping"),
    ("js", "const md = markdownIt({ html: true })", "escaping"),
    ("go", 'fmt.Fprintf(w, "<p>Hello %s</p>", name)', "escaping"),
    ("py", 'return HttpResponse(f"<p>{name}</p>")', "escaping"),
    ("html", "<div>{{{ body }}}</div>", "escaping"),
    ("js", "_.merge(target, source)", "prototype-pollution"),
    ("js", "app.use(helmet())", "http"),
    ("py", 'response["Content-Disposition"] = disposition', "http"),
    ("js", 'browser = await puppeteer.launch({ args: ["--no-sandbox"] })', "permissions"),
    ("go", 'os.Setenv("PATH", dirs)', "permissions"),
    ("go", "// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list", "permissions"),
    ("go", "r.Body = http.MaxBytesReader(w, r.Body, maxBody)", "resource-limits"),
    ("py", 'app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024', "resource-limits"),
    ("go", "p := unsafe.Pointer(&buf[0])", "memory"),
    ("py", "parser = etree.XMLParser(resolve_entities=False, no_network=True)", "xml"),
    ("py", "root = ET.fromstring(body)", "xml"),
    ("js", "const doc = new DOMParser().parseFromString(text, 'text/xml')", "xml"),
    ("go", "dec := xml.NewDecoder(r)", "xml"),
    ("go", "user, pass, ok := r.BasicAuth()", "auth"),
    ("py", "if not request.user.is_logged_in:", "auth"),
    ("js", "if (url.origin !== allowed.origin) {", "url"),
    ("py", "# reject names that would bypass the allow list", "security-words"),
]


@pytest.mark.parametrize(("lang", "line", "category"), SINKS,
                         ids=[f"{c}-{lang}-{i}" for i, (lang, _l, c) in enumerate(SINKS)])
def test_checklist_sink_escalates_alone(default: Policy, lang: str, line: str,
                                        category: str) -> None:
    decision = gate_diff(default, one_line(lang, line), tier="fast", run_linter=False)
    assert decision.features["pattern_scores"].get(category, 0.0) >= 0.5
    assert decision.security_escalation


WEAK = [
    ("py", "resp = requests.get(url, timeout=5)", "outbound-request"),
    ("js", "const res = await fetch(url)", "outbound-request"),
    ("go", "resp, err := http.Get(url)", "outbound-request"),
    ("js", "const token = Math.random().toString(36)", "randomness"),
    ("py", "module = importlib.import_module(name)", "code-import"),
    ("py", "name = os.path.basename(name)", "path-hint"),
    ("js", "target[key] = source[key]", "dynamic-key"),
    ("js", "if (!/^[\\w.-]+$/.test(ref)) {", "regex"),
    ("py", "if user.role == 'editor':", "auth-words"),
    ("js", "html += '<li>' + item", "html-build"),
]


@pytest.mark.parametrize(("lang", "line", "category"), WEAK,
                         ids=[f"{c}-{lang}" for lang, _l, c in WEAK])
def test_weak_signals_count_but_do_not_escalate_alone(default: Policy, lang: str, line: str,
                                                      category: str) -> None:
    decision = gate_diff(default, one_line(lang, line), tier="fast", run_linter=False)
    assert decision.features["pattern_scores"] == {category: 0.25}
    assert not decision.security_escalation


def test_weak_outbound_request_with_a_guard_escalates(default: Policy) -> None:
    diff = one_line("py", "if not url.startswith(('http://', 'https://')):",
                    "    raise ValueError('bad url')", "resp = requests.get(url)")
    assert gate_diff(default, diff, tier="fast", run_linter=False).security_escalation


ORDINARY = [
    ("py", "sig = inspect.signature(func)"),
    ("py", "from networkx.algorithms import shortest_path"),
    ("py", "class Renderable(Protocol):"),
    ("py", "    def eval(cls, *args):"),
    ("py", '"""Depth-first traversal of the expression tree."""'),
    ("py", '@pytest.fixture(scope="module")'),
    ("py", "    for signature in overloads:"),
    ("py", "words = text.split()"),
    ("js", "const total = items.reduce((a, b) => a + b, 0)"),
    ("go", "total += len(items)"),
    ("py", "found = http_status == 200"),
    ("js", "const executor = makeExecutor(options)"),
    ("js", "const match = pattern.exec(line)"),
    ("html", "<p>{{ title }}</p>"),
]


@pytest.mark.parametrize(("lang", "line"), ORDINARY, ids=[line for _l, line in ORDINARY])
def test_ordinary_lines_do_not_escalate(default: Policy, lang: str, line: str) -> None:
    decision = gate_diff(default, one_line(lang, line), tier="fast", run_linter=False)
    assert sum(decision.features["pattern_scores"].values()) < 0.5
    assert not decision.security_escalation


@pytest.mark.parametrize("lines", [
    ("if (typeof name !== 'string') {", "  return next(new TypeError('name'))", "}"),
    ("if (!allowed) {", "  return res.sendStatus(403)", "}"),
    ("if not can_view:", "    return HttpResponseForbidden()"),
    ("if !ok {", "\tc.AbortWithStatus(401)", "}"),
], ids=["node-callback", "express-status", "django-response", "gin-abort"])
def test_refusals_in_web_frameworks_are_guards(lines: tuple[str, ...]) -> None:
    lang = "js" if lines[0].startswith("if (") else "go" if lines[0].endswith("{") else "py"
    assert has_guard(parse_diff(one_line(lang, *lines)).files[0])


def test_ordinary_callback_is_not_a_guard() -> None:
    change = parse_diff(one_line("js", "if (done) {", "  next(result)", "}")).files[0]
    assert not has_guard(change)
