"""Recognising credentials in cell code, environment variables and string values (pure).

A checkpoint carries the cells' code and the session's values to wherever it is stored and
shared, so a key typed into a cell would travel with it. What we recognise:

- token formats with a known prefix: AWS access key ids (`AKIA...`, `ASIA...`), PEM private
  keys and service-account JSON (`"private_key": "..."`), Google OAuth tokens (`ya29.`) and
  API keys (`AIza...`), GitHub (`ghp_`, `gho_`, ..., `github_pat_`), OpenAI and Anthropic
  (`sk-...`), Hugging Face (`hf_`), Slack (`xoxb-`, ...), HTTP `Bearer` tokens;
- string literals given to a name that says what they are: `token="..."`, `api_key = '...'`,
  `password="..."`, `{"secret": "..."}`, `os.environ["OPENAI_API_KEY"] = "..."`;
- in magics and shell lines: `-o token=...` storage options, `%env NAME=value`,
  `%env NAME value`, `%set_env NAME value` where NAME looks like a key or token.

`scrub` replaces each with `[scrubbed KIND]`, so what a cell did stays readable; a scrubbed
cell cannot be rerun faithfully (the recorder marks it so, and its results are stored).
Nothing here imports IPython or fsspec.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

# Why a value, or an environment variable, is not in a checkpoint (said by the restore report).
WITHHELD = "looks like a credential: set it again"
MARKER = re.compile(r"\[scrubbed ([^\]\n]{1,80})\]")


@dataclass(frozen=True)
class Finding:
    """One credential in a text: what kind, and where (`start`:`end`, the secret itself)."""

    kind: str
    start: int
    end: int


# Names that say a value is a credential (on the words of an identifier: `hf_token`, not `tokenizer`).
_SECRET_NAME = re.compile(
    r"(?i)(?:^|[_.-])(?:token|secret|password|passwd|passphrase|credentials?|authorization)(?:$|[_.-])"
    r"|api_?key|access_?key|secret_?key|private_?key|client_?secret|auth_?token"
)
_NOT_SECRET_NAMES = re.compile(r"(?i)^(?:.*_)?(?:tokens?_?(?:ids?|type|count|len|length|limit|s|izer|ized|ization)|"
                               r"max_tokens?|num_tokens?|n_tokens?)$")

# Values that are settings, not secrets (gcsfs's `token="anon"`, ...).
_PLAIN_VALUES = frozenset({"", "anon", "browser", "cache", "cloud", "google_default", "none", "null", "true", "false",
                           "default", "env", "environment", "auto", "required", "optional", "*", "***", "xxx"})

# Token formats with a recognisable prefix: (kind, pattern). The whole match is the secret.
_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b")),
    ("Google OAuth token", re.compile(r"\bya29\.[0-9A-Za-z_\-.]{20,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("OpenAI key", re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}")),
    ("Anthropic key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("Slack token", re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{10,}")),
    ("bearer token", re.compile(r"(?<=Bearer )[A-Za-z0-9._~+/\-]{16,}=*")),
)

_QUOTED = r"""(?P<q>'''|\"\"\"|'|")(?P<value>(?:(?!(?P=q))[^\\\n]|\\.){1,4096}?)(?P=q)"""
# `name = "value"`, `name="value"` (keyword), `"name": "value"`, `d["name"] = "value"`,
# `setdefault("NAME", "value")`, `putenv("NAME", "value")`.
_ASSIGNED = (
    re.compile(rf"""(?P<name>\b[A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[A-Za-z_][\w\[\], .]*)?=\s*[rRbBuU]?{_QUOTED}"""),
    re.compile(rf"""(?P<k>['"])(?P<name>[A-Za-z_][\w.-]*)(?P=k)\s*(?:\]\s*=|:|,)\s*[rRbBuU]?{_QUOTED}"""),
)
_SERVICE_ACCOUNT = re.compile(r"""(?P<k>['"])private_key(?:_id)?(?P=k)\s*:\s*(?P<q>['"])(?P<value>(?:(?!(?P=q))[^\\]|\\.)+)(?P=q)""")
# In magics and shell lines: `-o token=abc`, `--password abc`, `%env NAME=value`, `%env NAME value`.
_URL_PASSWORD = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}://[^/\s:@'\"]+:(?P<value>[^/\s@'\"]+)@")
_MAGIC_LINE = re.compile(r"^[ \t]*[%!].*$", re.M)
_ENV_MAGIC = re.compile(r"^[ \t]*%(?:env|set_env)[ \t]+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:[ \t]*=[ \t]*|[ \t]+)(?P<value>\S.*?)[ \t]*$", re.M)
_OPTION = re.compile(r"(?:^|\s)(?:-o[ \t]+|--?)(?P<name>[A-Za-z_][\w.-]*)(?:=|[ \t]+)(?P<value>\[scrubbed [^\]\n]*\]|[^\s'\"]+|'[^']*'|\"[^\"]*\")")


# Cheap first looks (one pass each), so that ordinary cells cost a few microseconds.
_ANY_TOKEN = re.compile(r"AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ya29\.|AIza|gh[pousr]_|github_pat_|sk-|hf_|xox|Bearer |PRIVATE KEY")
_NAME_WORDS = ("token", "secret", "passw", "passphrase", "credential", "authorization", "apikey", "api_key",
               "accesskey", "access_key", "privatekey", "private_key")


def looks_like_secret_name(name: str) -> bool:
    """Does this variable, option or environment name say its value is a credential?"""
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET_NAMES.match(name)


def is_plain_value(value: str) -> bool:
    """A value that is a setting or a reference, not a secret itself."""
    stripped = value.strip().strip("'\"")
    return (stripped.lower() in _PLAIN_VALUES or stripped.endswith(".json")
            or bool(re.fullmatch(r"\{[^{}]*\}|\$\{?\w+\}?|<[^<>]*>|\[scrubbed [^\]]*\]", stripped)))


def token_kind(value: str) -> str | None:
    """The kind of credential `value` contains (a known token format), or None."""
    if not _ANY_TOKEN.search(value):
        return None
    for kind, pattern in _TOKENS:
        if pattern.search(value):
            return kind
    return None


def find(text: str) -> list[Finding]:
    """Every credential recognised in `text`, in order, overlapping ones merged."""
    found: list[Finding] = []
    if _ANY_TOKEN.search(text):
        for kind, pattern in _TOKENS:
            found += [Finding(kind, m.start(), m.end()) for m in pattern.finditer(text)]
    if "://" in text:
        found += [Finding("password in a URL", m.start("value"), m.end("value")) for m in _URL_PASSWORD.finditer(text)
                  if not is_plain_value(m.group("value"))]
    lowered = text.lower()
    if not any(word in lowered for word in _NAME_WORDS):
        return _merged(found)
    found += [Finding("service-account key", m.start("value"), m.end("value")) for m in _SERVICE_ACCOUNT.finditer(text)
              if not is_plain_value(m.group("value"))]
    for pattern in _ASSIGNED:
        for m in pattern.finditer(text):
            if looks_like_secret_name(m.group("name")) and not is_plain_value(m.group("value")):
                found.append(Finding(f"{m.group('name')} value", m.start("value"), m.end("value")))
    for m in _ENV_MAGIC.finditer(text):
        if looks_like_secret_name(m.group("name")) and not is_plain_value(m.group("value")):
            found.append(Finding(f"%env {m.group('name')}", m.start("value"), m.end("value")))
    for line in _MAGIC_LINE.finditer(text):
        for m in _OPTION.finditer(line.group()):
            if looks_like_secret_name(m.group("name")) and not is_plain_value(m.group("value")):
                start = line.start() + m.start("value")
                found.append(Finding(f"option {m.group('name')}", start, start + len(m.group("value"))))
    return _merged(found)


def _merged(found: list[Finding]) -> list[Finding]:
    merged: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Finding(last.kind, last.start, max(last.end, f.end))
        elif f.end > f.start:
            merged.append(f)
    return merged


def scrub(text: str) -> tuple[str, list[str]]:
    """`text` with every credential replaced by `[scrubbed KIND]`, and the kinds replaced."""
    found = find(text)
    if not found:
        return text, []
    parts, at = [], 0
    for f in found:
        parts += [text[at:f.start], f"[scrubbed {f.kind}]"]
        at = f.end
    parts.append(text[at:])
    return "".join(parts), [f.kind for f in found]


def scrubbed_kinds(text: str) -> list[str]:
    """The kinds of credential `scrub` already removed from `text` (its markers)."""
    return MARKER.findall(text)


def _secret_string(text: str, name: str) -> str | None:
    if len(text) > 100_000:
        return None  # a document, not a key
    kind = token_kind(text)
    if kind:
        return kind
    # A bare `token` holds a uuid or a word as often as a key: only its format can tell.
    if (name and looks_like_secret_name(name) and name.lower() != "token" and not is_plain_value(text)
            and "\n" not in text.strip()):
        return f"{name} value"
    return None


def secret_value(value: Any, name: str = "", *, budget: int = 2000) -> str | None:
    """Why `value` (bound to `name`) is itself a credential, or None: a string in a known token
    format, or a non-empty string under a name that says it is one; looked for inside plain
    dicts, lists and tuples too (a config dict holding an API key), `budget` items at most."""
    todo: list[tuple[Any, str, int]] = [(value, name, 0)]
    while todo and budget > 0:
        item, key, depth = todo.pop()
        budget -= 1
        kind = type(item)
        if kind is str or kind is bytes:
            found = _secret_string(item.decode("utf-8", "replace") if kind is bytes else item, key)
            if found:
                return found
        elif depth < 3 and kind is dict:
            todo += [(v, k if type(k) is str else "", depth + 1) for k, v in itertools.islice(item.items(), budget)]
        elif depth < 3 and kind in (list, tuple):
            todo += [(v, "", depth + 1) for v in item[:budget]]
    return None
