"""The gate's risky-code categories on real ``git diff`` output: each change is made to a
committed file in a real repository, so context lines and removed lines are as git writes
them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.policy import Policy, load_policy
from orchestrator.router import gate_diff

NO_USER = Path("/nonexistent/policy.yaml")


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy("default", user_path=NO_USER)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def change(repo: Path, path: str, before: str, after: str) -> str:
    """Commit ``before`` at ``path``, write ``after`` and return the ``git diff``."""
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(before)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"before {path}")
    target.write_text(after)
    return _git(repo, "diff")


SECURITY_CHANGES = [
    pytest.param("web/views.py",
                 "def ad(page, mode):\n    return render(page + mode)\n",
                 "def ad(page, mode):\n    return render_template_string(page, mode=mode)\n",
                 "template-injection", id="py-ssti-sink"),
    pytest.param("lib/parse.js",
                 "function f(entry) {\n  if (this._hardLinks[entry.path]) {\n    skip()\n  }\n"
                 "  return entry\n}\n",
                 "function f(entry) {\n  return entry\n}\n",
                 "path", id="js-hard-link-check-removed"),
    pytest.param("lib/types.js",
                 "function make(v) {\n  return new global[v.name](v.arr)\n}\n",
                 "function make(v) {\n  return new CTORS[v.name](v.arr)\n}\n",
                 "code-eval", id="js-global-lookup-by-name"),
    pytest.param("app/uri.py",
                 "HOST = r'x'\n",
                 "HOST = r'x'\nIPV6 = r\"([A-F0-9:]+:+)+[A-F0-9]+\"\n",
                 "regex-dos", id="nested-quantifier"),
    pytest.param("app/config.py",
                 "def paths(p):\n    return p\n",
                 "import os\n\ndef paths(p):\n    p.insert(0, os.getcwd())\n    return p\n",
                 "permissions", id="cwd-on-search-path"),
    pytest.param("srv/repo.go",
                 "package srv\n\nfunc ok(p string) bool { return true }\n",
                 "package srv\n\nfunc ok(p string) bool {\n"
                 "\treturn !strings.Contains(p, \".git/\")\n}\n",
                 "path", id="go-dot-git-path"),
    pytest.param("srv/policy.go",
                 "package srv\n\nconst rules = `\naudit deny @{HOME}/bin/{,**} wl,\n`\n",
                 "package srv\n\nconst rules = `\naudit deny @{HOME}/bin/{,**} wl,\naudit deny "
                 "@{HOME}/bin wl,\n`\n",
                 "permissions", id="go-sandbox-profile"),
    pytest.param("srv/cors.js",
                 "function h(res) {\n  return res\n}\n",
                 "function h(res) {\n  res.set('Access-Control-Allow-Origin', '*')\n"
                 "  return res\n}\n",
                 "http", id="js-cors-header"),
    # Third round: per-language gaps from general knowledge.
    pytest.param("tools/fetch.py", "def args(url):\n    return ['clone', url]\n",
                 "def args(url):\n    return ['clone', '--', url]\n", "command",
                 id="option-terminator-before-argument"),
    pytest.param("db/find.py", "def q(uid):\n    return 'SELECT * FROM t'\n",
                 "def q(uid):\n    return f'SELECT * FROM t WHERE id = {uid}'\n", "sql",
                 id="py-sql-f-string"),
    pytest.param("db/find.js", "function q(id) {\n  return 'x'\n}\n",
                 "function q(id) {\n  return `SELECT * FROM t WHERE id = ${id}`\n}\n", "sql",
                 id="js-sql-template-literal"),
    pytest.param("db/find.go", "package db\n\nfunc q(id string) string { return id }\n",
                 "package db\n\nfunc q(id string) string {\n"
                 "\treturn fmt.Sprintf(\"SELECT * FROM t WHERE id = %s\", id)\n}\n", "sql",
                 id="go-sql-sprintf"),
    pytest.param("web/posts.js", "function del(post, me) {\n  return post.remove()\n}\n",
                 "function del(post, me) {\n  if (post.authorId !== me.id) return\n"
                 "  return post.remove()\n}\n", "auth", id="js-ownership-compared"),
    pytest.param("web/items.py", "def items():\n    return Item.objects.all()\n",
                 "def items(request):\n    return Item.objects.filter(owner=request.user)\n",
                 "auth", id="py-current-user"),
    pytest.param("web/upload.py", "EXTS = None\n",
                 "ALLOWED_EXTENSIONS = {'png', 'jpg'}\n", "validation", id="allowlist-named"),
    pytest.param("web/login.py", "def done(request):\n    return True\n",
                 "def done(request):\n    request.session.cycle_key()\n    return True\n",
                 "auth", id="session-renewed"),
    pytest.param("ml/io.py", "def load(p):\n    return p\n",
                 "import torch\n\ndef load(p):\n    return torch.load(p)\n",
                 "deserialization", id="py-model-file-load"),
    pytest.param("srv/body.go", "package srv\n\nfunc body() {}\n",
                 "package srv\n\nfunc body(r io.Reader) {\n\tzr, _ := gzip.NewReader(r)\n"
                 "\t_ = zr\n}\n", "resource-limits", id="go-decompression"),
    pytest.param("srv/page.go", "package srv\n\nimport \"fmt\"\n",
                 "package srv\n\nimport \"text/template\"\n", "escaping",
                 id="go-template-package"),
    pytest.param("web/dom.js", "function put(el, s) {\n  el.textContent = s\n}\n",
                 "function put(el, s) {\n  el.insertAdjacentHTML('beforeend', s)\n}\n",
                 "escaping", id="js-html-sink"),
    pytest.param("srv/rules.go", "package srv\n\nfunc run() {}\n",
                 "package srv\n\nfunc run() {\n\tvm := goja.New()\n\t_ = vm\n}\n",
                 "code-eval", id="go-embedded-interpreter"),
    pytest.param("web/docs.go", "package web\n\nfunc edit(u, d int) {}\n",
                 "package web\n\nfunc edit(u, d int) {\n\tif !canEdit(u, d) {\n"
                 "\t\treturn\n\t}\n}\n", "auth", id="go-authz-check-name"),
]


@pytest.mark.parametrize(("path", "before", "after", "category"), SECURITY_CHANGES)
def test_security_changes_escalate(default: Policy, git_repo: Path, path: str, before: str,
                                   after: str, category: str) -> None:
    decision = gate_diff(default, change(git_repo, path, before, after), tier="fast",
                         run_linter=False)
    assert decision.security_escalation, decision.features["pattern_scores"]
    assert category in decision.features["pattern_scores"]


def test_length_limit_with_rejection_message_escalates(default: Policy, git_repo: Path) -> None:
    before = "title = StringField('Title', validators=[data_required()])\n"
    after = ("title = StringField('Title', validators=[\n    data_required(),\n"
             "    length(\n        max=256,\n        message='Title too long.',\n    ),\n])\n")
    decision = gate_diff(default, change(git_repo, "app/forms.py", before, after), tier="fast",
                         run_linter=False)
    assert decision.security_escalation
    assert {"resource-limits", "validation"} <= set(decision.features["pattern_scores"])


def test_check_added_next_to_request_input_escalates(default: Policy, git_repo: Path) -> None:
    before = "def view(request):\n    name = request.args['name']\n    return name\n"
    after = ("def view(request):\n    name = request.args['name']\n    if len(name) > 64:\n"
             "        raise ValueError('name')\n    return name\n")
    decision = gate_diff(default, change(git_repo, "app/views.py", before, after), tier="fast",
                         run_linter=False)
    assert decision.security_escalation
    assert decision.features["pattern_scores"]["input-check"] == 0.25


ORDINARY_CHANGES = [
    pytest.param("sk/learn.py",
                 "def fit(X, algorithm='lars'):\n    return X\n",
                 "def fit(X, algorithm='lasso_cd', max_iter=1000):\n    return X\n",
                 id="numeric-algorithm-parameter"),
    pytest.param("pkg/meta.py",
                 "def bases(cls):\n    return cls.__bases__\n",
                 "def bases(cls):\n    return cls.__mro__[1:]\n",
                 id="method-resolution-order"),
    pytest.param("pkg/text.py",
                 "def words(s):\n    return s.split()\n",
                 "def words(s):\n    return [w for w in s.split() if w]\n",
                 id="plain-refactor"),
    pytest.param("pkg/names.py",
                 "import re\n\ndef rx(prefix):\n    return prefix\n",
                 "import re\n\ndef rx(prefix):\n"
                 "    return re.compile(re.escape(prefix) + r'-\\d+')\n",
                 id="regex-escape-is-not-output-escaping"),
    pytest.param("pkg/cli.py", "def main(argv):\n    return argv\n",
                 "def main(argv):\n    if '--' in argv:\n        argv.remove('--')\n"
                 "    return argv\n",
                 id="option-terminator-only-compared"),
]


@pytest.mark.parametrize(("path", "before", "after"), ORDINARY_CHANGES)
def test_ordinary_changes_stay_on_fast(default: Policy, git_repo: Path, path: str, before: str,
                                       after: str) -> None:
    decision = gate_diff(default, change(git_repo, path, before, after), tier="fast",
                         run_linter=False)
    assert not decision.security_escalation, decision.features["pattern_scores"]
    assert decision.action == "proceed"
