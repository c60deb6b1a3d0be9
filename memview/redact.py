"""Keeping credentials out of anything that leaves the machine (bundles, attached reports).

A session's metadata can hold what the user typed to start it: environment variables, HTTP
headers, a command line with ``--token=…``, a URL with a password or an ``api_key`` query. None
of that may travel in a bundle handed to a colleague or attached to a public bug report. The
rule is by *name*: a variable, header, option or query parameter whose name looks like a
credential (TOKEN, SECRET, KEY, PASSWORD, AUTH, COOKIE, CREDENTIAL, …) loses its value. It errs
on the side of hiding: a harmless ``--monkey=3`` is hidden too, which costs nothing.

Every function returns a new value and the list of places it hid something (names only, never
values), so the bundle manifest can tell the recipient what was left out.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

_WORDS = (
    "TOKEN",
    "SECRET",
    "KEY",
    "PASS",
    "PWD",
    "AUTH",
    "COOKIE",
    "CREDENTIAL",
    "SESSID",
    "SIGNATURE",
    "PRIVATE",
    "BEARER",
    "JWT",
)
_NAME = re.compile("|".join(_WORDS), re.IGNORECASE)
# NAME=value, --name=value inside a longer string (a shell snippet)
_NAME_CHARS = r"[A-Za-z0-9_.\-]*(?:" + "|".join(_WORDS) + r")[A-Za-z0-9_.\-]*"
_ASSIGN = re.compile(
    r"(?P<name>" + _NAME_CHARS + r")(?P<sep>\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"]+)", re.IGNORECASE
)
# an option and its separate value in a command line rendered as text: "--api-token abc"
_OPTION = re.compile(
    r"(?P<name>(?<!\S)--?" + _NAME_CHARS + r")(?P<sep>\s+)(?P<value>\"[^\"]*\"|'[^']*'|(?!-)[^\s\"]+)", re.IGNORECASE
)
# a header line ("Authorization: Bearer abc"): the rest of the line (or of the quoted string) is the secret
_HEADER = re.compile(r"(?P<name>" + _NAME_CHARS + r")(?P<sep>\s*:\s*)(?P<value>[^\r\n'\"]+)", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


def sensitive_name(name: str) -> bool:
    """True for a variable/header/option/parameter name that looks like it holds a credential."""
    return bool(_NAME.search(name.lstrip("-")))


def _redact_url(url: str) -> tuple[str, bool]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, False
    changed = False
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in creds else f"{REDACTED}@{host}"
        changed = True
    query = parts.query
    if query:  # every value: a list of secret names always misses one (pass, X-Amz-Signature, …)
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(v != REDACTED for _, v in pairs):
            query = urlencode([(k, REDACTED) for k, _ in pairs], safe="<>")
            changed = True
    if not changed:
        return url, False
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), True


def redact_text(text: str) -> tuple[str, bool]:
    """Hide credential-looking ``NAME=value`` / ``NAME: value`` pairs, URL passwords and every URL
    query value in free text."""
    changed = False

    def url_sub(m: re.Match[str]) -> str:
        nonlocal changed
        new, hit = _redact_url(m.group(0))
        changed = changed or hit
        return new

    out = _URL.sub(url_sub, text)

    def assign_sub(m: re.Match[str]) -> str:
        nonlocal changed
        if m.group("value") == REDACTED:
            return m.group(0)
        changed = True
        return f"{m.group('name')}{m.group('sep')}{REDACTED}"

    # URLs were handled whole: do not treat "https://…?x" as NAME: value
    pieces = re.split(r"(\S+://\S+)", out)
    pieces = [
        p if i % 2 else _OPTION.sub(assign_sub, _ASSIGN.sub(assign_sub, _HEADER.sub(assign_sub, p)))
        for i, p in enumerate(pieces)
    ]
    return "".join(pieces), changed


def redact_argv(argv: list[str]) -> tuple[list[str], list[int]]:
    """A command line with credential values hidden; also returns the indexes it changed.

    ``--token=abc`` and ``API_KEY=abc`` (an ``env`` prefix) lose the value; ``--token abc`` and
    ``-H 'Authorization: Bearer abc'`` lose the following argument's secret part.
    """
    out: list[str] = []
    hidden: list[int] = []
    hide_next = False
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):
            out.append(arg)
            continue
        if hide_next:
            hide_next = False
            if not arg.startswith("-"):
                new, hit = redact_text(arg)
                out.append(new if hit else REDACTED)
                hidden.append(i)
                continue
        if arg.startswith("-") and "=" not in arg and sensitive_name(arg):
            hide_next = True
            out.append(arg)
            continue
        new, hit = redact_text(arg)
        out.append(new)
        if hit:
            hidden.append(i)
    return out, hidden


def redact_value(value: Any, where: str = "") -> tuple[Any, list[str]]:
    """Walk JSON-like data: dict entries with credential-looking keys are dropped; strings are scrubbed.

    Dropping (rather than keeping the key with a placeholder) follows the promise "secrets are not
    exported": an ``env`` or ``headers`` mapping loses those variables altogether. The returned
    list names each place (``meta.env.GITHUB_TOKEN``) so the manifest can say what was left out.
    """
    found: list[str] = []
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            if isinstance(k, str) and sensitive_name(k):
                found.append(path)
                continue
            out[k], sub = redact_value(v, path)
            found += sub
        return out, found
    if isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            new, sub = redact_value(v, f"{where}[{i}]")
            items.append(new)
            found += sub
        return items, found
    if isinstance(value, str):
        new, hit = redact_text(value)
        return new, [where] if hit else []
    return value, found
