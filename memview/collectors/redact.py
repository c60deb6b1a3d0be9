"""What of a watched URL and its headers may be stored, and what must only ever be sent.

``memview watch`` takes credentials three ways: ``--header "Authorization: Bearer …"``, a
``user:password@`` in the URL, and (by habit of some services) a ``?private_token=`` in the query.
All three are used on requests and never written anywhere: the stored target and command are built
here, from the URL with its userinfo removed and every query value masked (only names the user
keeps with ``--keep-query`` show theirs), and
messages that might echo a secret back (a parser error quoting a body) pass through
:func:`scrub_text` before they become events.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

from memview.collectors.base import CollectorError

MASK = "***"

#: query parameters whose values are treated as credentials (compared case-insensitively)
SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "auth",
        "auth_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "sig",
        "signature",
        "session",
        "sessionid",
        "jwt",
    }
)

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name


def check_url(url: str) -> str:
    """The URL, stripped, if memview may poll it; else a CollectorError saying why."""
    url = url.strip()
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise CollectorError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL", "'zz' does not appear to be an IPv4 or IPv6 address"
        raise CollectorError(f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or url
        raise CollectorError(f"only http:// and https:// URLs can be watched (got {redact_url(shown)!r})")
    if not host:
        raise CollectorError(f"no host in the URL {redact_url(url)!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise CollectorError(f"bad port in the URL {redact_url(url)!r}") from None
    return url


def redact_url(url: str, keep: frozenset[str] | set[str] | tuple[str, ...] = ()) -> str:
    """The URL as it may be stored and shown: no userinfo, and *every* query value masked.

    A name list of secret parameters always misses one (``private_token``, ``api-key``, ``pass``,
    ``X-Amz-Signature``…), so nothing in the query is kept unless the user named it with
    ``--keep-query NAME`` (``keep``, compared case-insensitively); a name that looks like a
    credential is masked even then. The fragment is dropped (it is never sent anyway).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        kept = {k.lower() for k in keep}
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, v if _kept(k, kept) else MASK) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _kept(name: str, kept: set[str]) -> bool:
    return name.lower() in kept and name.lower() not in SECRET_PARAMS and not _SECRETISH.search(name)


#: parts of a parameter name that say "credential" even when the user asked to keep it
_SECRETISH = re.compile(r"token|secret|pass|pwd|key|auth|sig|session|jwt|cred|cookie|private", re.IGNORECASE)


def userinfo_header(url: str) -> dict[str, str]:
    """``user:password@`` in the URL as the Basic ``Authorization`` header curl would send."""
    parts = urlsplit(url)
    if parts.username is None:
        return {}
    raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def parse_headers(headers: object) -> dict[str, str]:
    """``["Name: value", …]`` or a mapping -> {name: value}; a CollectorError for a bad one.

    The message never repeats a value: a header is usually a credential.
    """
    if headers is None:
        return {}
    items: list[tuple[str, str]] = []
    if isinstance(headers, dict):
        items = [(str(k), str(v)) for k, v in headers.items()]
    else:
        for text in headers:  # type: ignore[attr-defined]
            name, sep, value = str(text).partition(":")
            if not sep:
                raise CollectorError(
                    f"a header must look like 'Name: value' (the one starting {_first_word(name)!r} has no ':')"
                )
            items.append((name, value))
    out: dict[str, str] = {}
    for name, value in items:
        name, value = name.strip(), value.strip()
        if not _TOKEN.match(name):
            raise CollectorError(
                f"not a valid header name: {_first_word(name)!r}…"
                if " " in name
                else f"not a valid header name: {name[:40]!r}"
            )
        if any(c in value for c in "\r\n\0"):
            raise CollectorError(f"the value of header {name} contains a line break")
        out[name] = value
    return out


def _first_word(text: str) -> str:
    """Enough of a malformed header to recognise it, never its value (the words after the first)."""
    words = text.split()
    return words[0][:40] if words else ""


def secrets_of(url: str, headers: dict[str, str], keep: frozenset[str] | set[str] | tuple[str, ...] = ()) -> list[str]:
    """Every string that must never be stored: header values, URL password/user, every query value
    not kept (see :func:`redact_url`)."""
    found = [v for v in headers.values() if len(v) >= 4]
    for value in list(found):  # "Bearer abc" -> also "abc", so a partial echo is caught too
        _, _, rest = value.partition(" ")
        if len(rest) >= 4:
            found.append(rest)
    parts = urlsplit(url)
    for piece in (parts.password, parts.username):
        if piece and len(piece) >= 3:
            found += [piece, unquote(piece)]
    kept = {k.lower() for k in keep}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        # scrubbing a short plain value ("full") from every message would mangle them; a short value
        # under a credential-looking name is scrubbed all the same
        if not _kept(k, kept) and len(v) >= (3 if _SECRETISH.search(k) or k.lower() in SECRET_PARAMS else 6):
            found += [v, quote(v, safe=""), quote_plus(v)]  # as sent, too: an echo may quote it encoded
    found += list(userinfo_header(url).values())
    return sorted(set(found), key=len, reverse=True)


def scrub_text(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by the mask (for messages built from server output)."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
