"""Loading and layering policies; errors name file, line and field.

Layers, weakest first: the built-in (or a file, with its ``extends`` chain) < the user's
``<TANDEM_HOME>/policy.yaml`` < the repository's ``.tandem/policy.yaml`` < ``-s key=value``.
Mappings merge key by key; rule lists merge by rule ``id``; other lists are replaced.
A repository's content is not trusted, so its layer may only tighten (``tighten.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import policies
from orchestrator.errors import PolicyError
from orchestrator.policy import Policy
from orchestrator.security.tighten import check_tighten_only

KeyPath = tuple[str | int, ...]
RULE_LISTS = ("route_rules", "gate_rules")
_MAX_EXTENDS = 8
# ``policies.__path__`` works whether the package is installed as a regular or a
# namespace package (an editable install made before it had an ``__init__``).
_POLICY_DIR = Path(next(iter(policies.__path__)))


def builtin_policy_names() -> list[str]:
    """Names of the policies shipped in ``policies/``."""
    return sorted(p.stem for p in _POLICY_DIR.glob("*.yaml"))


def builtin_policy_path(name: str) -> Path:
    return _POLICY_DIR / f"{name}.yaml"


@dataclass
class Layer:
    """One source of policy settings and where each key came from."""

    source: str  # file path or "-s key=value"
    data: dict[str, Any]
    lines: dict[KeyPath, int | None] = field(default_factory=dict)  # None: not from a file

    def line_of(self, path: KeyPath) -> int | None:
        """Line of the longest prefix of ``path`` present in this layer (rule ids resolved)."""
        resolved = _resolve_ids(self.data, path)
        while resolved:
            if self.lines.get(resolved) is not None:
                return self.lines[resolved]
            resolved = resolved[:-1]
        return None

    def has(self, path: KeyPath) -> bool:
        resolved = _resolve_ids(self.data, path)
        return bool(resolved) and resolved in self.lines


# --- reading YAML ------------------------------------------------------------------

# A policy has a few hundred values; aliases can make a few hundred bytes of YAML stand
# for billions of them, which the loader and validation would walk one by one.
MAX_POLICY_NODES = 100_000


def _inside_repo(repo_file: Path, repo: Path) -> None:
    """A repository's policy is a file of the repository: not a link to a file elsewhere
    (which would be read, and its values quoted in errors)."""
    if repo_file.parent.is_symlink() or repo_file.is_symlink():
        raise PolicyError("is a symbolic link; a repository policy must be a plain file in "
                          "the repository", file=str(repo_file))
    if not repo_file.resolve().is_relative_to(repo.resolve()):
        raise PolicyError("resolves outside the repository", file=str(repo_file))


def read_layer(path: Path) -> Layer:
    """Parse one YAML file; syntax errors become ``PolicyError`` with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy: {exc.strerror}", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text (at byte {exc.start}): save the policy as UTF-8",
                          file=str(path)) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_size(node, {}) > MAX_POLICY_NODES:
            raise PolicyError(f"too large once its aliases are expanded (over "
                              f"{MAX_POLICY_NODES} values)", file=str(path))
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise PolicyError(f"invalid YAML: {exc.problem}", file=str(path), line=line) from exc
    except yaml.YAMLError as exc:  # e.g. a NUL byte (ReaderError has no mark)
        what = " ".join(str(exc).replace('in "<unicode string>", ', "").split())
        raise PolicyError(f"invalid YAML: {what}", file=str(path)) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError("a policy must be a mapping of keys", file=str(path), line=1)
    lines: dict[KeyPath, int | None] = {}
    if node is not None:
        _index_lines(node, (), lines)
    _anchor_ca_files(data.get("tiers"), path.parent)
    return Layer(str(path), data, lines)


def _anchor_ca_files(tiers: Any, folder: Path) -> None:
    """A relative ``ca_file`` in a policy file names a file next to the policy, and ``~``
    is the home folder (as for ``extends``), not a file in whatever directory Tandem runs
    from (``ssl`` itself expands neither)."""
    if not isinstance(tiers, dict):
        return  # validation reports the shape
    pending: list[Any] = []
    for tier in tiers.values():
        if isinstance(tier, dict) and isinstance(tier.get("models"), list):
            pending.extend(tier["models"])
    while pending:
        entry = pending.pop()
        if not isinstance(entry, dict):
            continue
        ca_file = entry.get("ca_file")
        if isinstance(ca_file, str) and ca_file:
            path = Path(ca_file).expanduser()
            entry["ca_file"] = str(path if path.is_absolute() else folder / path)
        if isinstance(entry.get("fallbacks"), list):
            pending.extend(entry["fallbacks"])


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """How many values the document holds once its aliases are expanded (an alias is the
    same node again: counted once per use, computed once per node)."""
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = 1  # a node inside itself (a recursive alias) counts once
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, seen) for item in node.value)
    seen[id(node)] = size
    return size


def _index_lines(node: yaml.Node, path: KeyPath, out: dict[KeyPath, int | None]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            out[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            out[child] = item.start_mark.line + 1
            _index_lines(item, child, out)


def _resolve_ids(data: Any, path: KeyPath) -> KeyPath:
    """``path`` with a rule id after ``route_rules``/``gate_rules`` turned into its index."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(path):
        if i == 1 and path[0] in RULE_LISTS and isinstance(part, str) and isinstance(node, list):
            idx = next((j for j, r in enumerate(node) if _rule_id(r) == part), None)
            if idx is None:
                return tuple(out)
            part = idx
        out.append(part)
        node = _child(node, part)
    return tuple(out)


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _rule_id(rule: Any) -> str | None:
    return rule.get("id") if isinstance(rule, dict) else None


# --- merging -----------------------------------------------------------------------


def merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base``: mappings key by key, rule lists by id, other values replaced."""
    out = dict(base)
    for key, value in layer.items():
        if key in RULE_LISTS and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _merge_rules(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _merge_rules(base: list[Any], layer: list[Any]) -> list[Any]:
    out = list(base)
    index = {_rule_id(r): i for i, r in enumerate(out) if _rule_id(r)}
    for rule in layer:
        rid = _rule_id(rule)
        if rid in index and isinstance(rule, dict):
            out[index[rid]] = merge(out[index[rid]], rule)
        else:
            out.append(rule)
    return out


# --- overrides ---------------------------------------------------------------------


def _override_path(key: str, data: dict[str, Any]) -> list[str | int]:
    """Split ``key`` on dots, keeping a rule id (which may hold dots) in one piece."""
    head, _, rest = key.partition(".")
    if head in RULE_LISTS and rest:
        ids = sorted((str(_rule_id(r)) for r in data.get(head) or [] if _rule_id(r)),
                     key=len, reverse=True)
        rid = next((i for i in ids if rest == i or rest.startswith(i + ".")), rest.split(".")[0])
        tail = rest[len(rid) + 1:]
        return [head, rid, *(tail.split(".") if tail else [])]
    return [int(p) if p.isdigit() else p for p in key.split(".")]


def override_layer(override: str, data: dict[str, Any]) -> Layer:
    """One ``dotted.key=value`` over ``data`` as a layer (value parsed as YAML).

    Rules are addressed by id: ``gate_rules.gate.linter.action=block``.
    """
    source = f"-s {override}"
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise PolicyError("expected key=value, e.g. budgets.max_steps=20", file=source)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise PolicyError(f"value is not valid YAML: {exc}", file=source, field=key) from exc
    parts = _override_path(key, data)
    patch: Any = value
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        if i == 1 and parts[0] in RULE_LISTS:
            patch = [{**(patch if isinstance(patch, dict) else {}), "id": part}]
        elif isinstance(part, int):
            raise PolicyError("list items are addressed by rule id only", file=source, field=key)
        else:
            patch = {part: patch}
    lines: dict[KeyPath, int | None] = {tuple(parts[:n]): None for n in range(1, len(parts) + 1)}
    return Layer(source, patch, lines)


# --- validation and errors ---------------------------------------------------------


def validate(data: dict[str, Any], layers: Sequence[Layer]) -> Policy:
    """Validate merged data; the first error names the layer, line and field it came from."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise _policy_error(exc, data, layers) from None


def _policy_error(exc: ValidationError, data: dict[str, Any], layers: Sequence[Layer]) -> Exception:
    errors = exc.errors()
    # an unknown key (a typo) often explains the other errors, e.g. a missing ``tiers``
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    path = _with_rule_ids(data, tuple(err["loc"]))
    message = str(err["msg"]).removeprefix("Value error, ")
    if not path and (m := re.match(r"^([\w.\-\[\]]+): (.*)$", message)):
        path = _message_path(m.group(1))
        message = m.group(2)
    if err["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; `tandem policy schema` lists the keys)"
    elif err["type"] == "missing" and path == ("tiers",):
        message += " (a policy that changes only some settings starts with 'extends: default')"
    elif "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict):
        message += f" (got {err['input']!r})"
    return error_at(layers, path, message)


def _message_path(field: str) -> KeyPath:
    """The key path a model validator's message names: ``budgets.max_tokens.fast``, or
    ``gate_rules.<rule id>[.tier]`` where the rule id may itself hold dots."""
    kind, _, rest = field.partition(".")
    if kind in RULE_LISTS and rest:
        rule_id, dot, last = rest.rpartition(".")
        return (kind, rule_id, last) if dot and last == "tier" else (kind, rest)
    return tuple(int(p) if p.isdigit() else p for p in field.split("."))


def error_at(layers: Sequence[Layer], path: KeyPath, message: str) -> PolicyError:
    """A ``PolicyError`` located in the strongest layer that sets ``path``."""
    field_name = ".".join(str(p) for p in path) or None
    for layer in reversed(layers):
        if layer.has(path):
            line = layer.line_of(path)
            return PolicyError(message, file=layer.source, line=line, field=field_name)
    for layer in reversed(layers):
        line = layer.line_of(path)
        if line is not None:
            return PolicyError(message, file=layer.source, line=line, field=field_name)
    source = layers[-1].source if layers else None
    return PolicyError(message, file=source, field=field_name)


def _with_rule_ids(data: dict[str, Any], loc: KeyPath) -> KeyPath:
    if len(loc) >= 2 and loc[0] in RULE_LISTS and isinstance(loc[1], int):
        rules = data.get(str(loc[0]))
        if isinstance(rules, list) and loc[1] < len(rules) and _rule_id(rules[loc[1]]):
            return (loc[0], str(_rule_id(rules[loc[1]])), *loc[2:])
    return loc


# --- the layer stack ---------------------------------------------------------------


def file_layers(name_or_path: str, *, named_by: str | None = None) -> list[Layer]:
    """A built-in name or a file, preceded by the layers of its ``extends`` chain.
    ``named_by``: the variable that named it (``TANDEM_POLICY``), for its errors."""
    chain: list[Layer] = []
    target: str | None = name_or_path
    while target is not None:
        if len(chain) >= _MAX_EXTENDS:
            raise PolicyError("`extends` chain too long (a cycle?)", file=chain[-1].source)
        layer = read_layer(_policy_file(target, chain[-1] if chain else None, named_by))
        chain.append(layer)
        parent = layer.data.pop("extends", None)
        if parent is not None and not isinstance(parent, str):
            raise PolicyError("must be a policy name or path", file=layer.source,
                              line=layer.lines.get(("extends",)), field="extends")
        target = parent
    return list(reversed(chain))


def _policy_file(target: str, referrer: Layer | None, named_by: str | None) -> Path:
    """The file of a policy name or path; ``referrer``: the layer whose ``extends`` names it."""
    if target in builtin_policy_names():
        return builtin_policy_path(target)
    path = Path(target).expanduser()
    if not path.is_absolute() and referrer is not None:
        path = Path(referrer.source).parent / path
    if path.is_file():
        return path
    if path.is_dir():
        problem = ("is a directory: give a policy YAML file (a repository's own policy is "
                   "its .tandem/policy.yaml, read without --policy)")
    else:
        names = ", ".join(builtin_policy_names())
        problem = f"no such policy file or built-in name (built-ins: {names})"
    raise _unusable(target, problem, referrer, named_by)


def _unusable(target: str, problem: str, referrer: Layer | None,
              named_by: str | None) -> PolicyError:
    """The error for a policy that cannot be read, located where it was named: the
    ``extends`` line of another policy, a setting, or the command line."""
    if referrer is not None:
        return PolicyError(f"{target}: {problem}", file=referrer.source,
                           line=referrer.lines.get(("extends",)), field="extends")
    return PolicyError(problem, file=f"{named_by}={target}" if named_by else target)


def _no_extends(layer: Layer) -> Layer:
    """User and repository layers apply over the chosen policy; they cannot pick another."""
    if "extends" in layer.data:
        raise PolicyError("`extends` is only read in the policy chosen with --policy or "
                          "TANDEM_POLICY", file=layer.source, line=layer.lines.get(("extends",)),
                          field="extends")
    return layer


def load_layers(
    name_or_path: str | None = None,
    *,
    repo: Path | None = None,
    overrides: Sequence[str] = (),
    user_path: Path | None = None,
) -> Policy:
    """Implementation of ``orchestrator.policy.load_policy``."""
    from orchestrator.config import get_settings

    settings = get_settings()
    if not name_or_path and settings.policy:
        layers = file_layers(settings.policy, named_by="TANDEM_POLICY")
    else:
        layers = file_layers(name_or_path or "default")
    user_file = user_path if user_path is not None else settings.user_policy_path
    if user_file.is_file():
        layers.append(_no_extends(read_layer(user_file)))
    data: dict[str, Any] = {}
    for layer in layers:
        data = merge(data, layer.data)
    repo_file = repo / ".tandem" / "policy.yaml" if repo is not None else None
    if repo is not None and repo_file is not None and repo_file.is_file():
        _inside_repo(repo_file, repo)
        trusted = validate(data, layers)
        repo_layer = _no_extends(read_layer(repo_file))
        layers.append(repo_layer)
        data = merge(data, repo_layer.data)
        check_tighten_only(trusted, validate(data, layers), repo_layer)
    for override in overrides:
        layer = override_layer(override, data)
        data = merge(data, layer.data)
        layers.append(layer)
    return validate(data, layers)
