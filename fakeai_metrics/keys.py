"""API keys are secrets: everything exported or stored names a key by a short one-way id.

``KeyIds`` turns a raw key into its label: a registered alias, or ``key_`` plus 12 hex digits of a
digest of the key. With ``FAKEAI_METRICS_KEY_SECRET`` set (or ``secret=`` given) the digest is an
HMAC-SHA256 keyed by that secret, so an id cannot be turned back into a short or guessable key
without the secret, and every process and replica given the same secret gives a key the same id.
Without a secret the digest is a plain SHA-256: stable everywhere with no setup, and safe for
long random keys (``sk-`` plus 48 characters), but a short key can be found from its id by trying
every candidate.

The raw key is used only as a cache key in memory and never leaves this module in any exported
value, log line or exception message; ``scrub`` and ``scrub_path`` take it out of text a caller
hands a tracker.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from . import validation as v

#: The environment variable holding the secret of keyed ids (any non-empty string).
SECRET_ENV = "FAKEAI_METRICS_KEY_SECRET"
#: What a path segment equal to a key becomes (the path normaliser's name for key-like segments).
KEY_SEGMENT = "{key}"


def hash_key(api_key: str, secret: str | bytes | None = None) -> str:
    """The id of ``api_key``: keyed by ``secret`` when given, else a plain SHA-256."""
    data = api_key.encode("utf-8")
    if secret:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        digest = hmac.new(key, data, hashlib.sha256).hexdigest()
    else:
        digest = hashlib.sha256(data).hexdigest()
    return "key_" + digest[:12]


class KeyIds:
    """Raw key -> exported id, with aliases and a bounded cache (hashing costs ~1 us).

    ``secret`` defaults to the environment's ``FAKEAI_METRICS_KEY_SECRET`` (read once, here).
    """

    def __init__(self, max_cached: int = 10_000, *, secret: str | None = None) -> None:
        self._max_cached = v.count("max_cached", max_cached)
        if secret is None:
            secret = os.environ.get(SECRET_ENV) or None
        elif not isinstance(secret, str) or not secret:
            raise v.InvalidMetricInput("secret must be a non-empty string or None")
        self._secret = secret
        self._ids: dict[str, str] = {}

    @property
    def keyed(self) -> bool:
        """True when ids are HMACs under a secret (recommended), False for plain SHA-256."""
        return self._secret is not None

    def alias(self, api_key: str, alias: str) -> None:
        """Export ``api_key`` as ``alias`` from now on (a team or tenant name, never the key)."""
        v.label("api_key", api_key)
        v.label("alias", alias)
        if alias == api_key:
            raise v.InvalidMetricInput("an alias must not be the key itself")
        self._ids[api_key] = alias

    def __call__(self, api_key: str, name: str = "api_key") -> str:
        try:
            found = self._ids.get(api_key)
        except TypeError:  # unhashable: not a string, let the check say so
            found = None
        if found is None:
            v.label(name, api_key)
            found = hash_key(api_key, self._secret)
            if len(self._ids) < self._max_cached:
                self._ids[api_key] = found
        return found

    def scrub(self, text: str, *keys: str | None) -> str:
        """``text`` with each raw key in ``keys`` that appears in it replaced by its id."""
        for key in keys:
            if key and key in text:
                text = text.replace(key, self(key))
        return text


#: Shortest key also replaced inside a path segment (a shorter one, such as a test's "a", would
#: mangle route names; it is still replaced where it is a whole segment).
MIN_KEY_IN_SEGMENT = 8


def scrub_path(path: str, *keys: str | None) -> str:
    """``path`` with every segment that is one of ``keys`` (a gateway's ``/proxy/<key>/v1/...``)
    replaced by ``{key}``, and a key of ``MIN_KEY_IN_SEGMENT`` characters or more inside a
    segment replaced too."""
    for key in keys:
        if key and key in path:
            inner = len(key) >= MIN_KEY_IN_SEGMENT
            path = "/".join(KEY_SEGMENT if seg == key else
                            seg.replace(key, KEY_SEGMENT) if inner else seg
                            for seg in path.split("/"))
    return path


#: Longest error message kept (error records and finished streams keep it whole). Longer
#: messages are clipped before any pattern runs, so a megabyte ``str(exc)`` costs a slice.
MAX_MESSAGE = 1000
#: Credentials of known shapes, replaced in every stored message whether or not the key was
#: passed as ``api_key``: OpenAI-style keys, an ``Authorization`` value, ``api key: <value>``.
_CREDENTIALS = [(re.compile(p, re.I), token) for p, token in [
    (r"\b(?:sk|pk|rk)-[\w-]{3,}", "<KEY>"),
    (r"\b(bearer|basic)\s+\S+", r"\1 <KEY>"),
    (r"\b(api[ _-]?key|x-api-key|access[ _-]?token|secret|password)"
     r"((?:\s+provided)?\s*[:=]\s*[\"']?)[^\s\"',;]+", r"\1\2<KEY>"),
]]


def scrub_credentials(message: str) -> str:
    """``message`` with credentials of known shapes replaced by ``<KEY>``."""
    for pattern, token in _CREDENTIALS:
        message = pattern.sub(token, message)
    return message


def clip_message(message: str) -> str:
    """The stored form of a message: clipped to ``MAX_MESSAGE`` characters, credentials scrubbed.

    It is scrubbed a little past the clip, so a credential cut by the clip is still replaced.
    """
    return scrub_credentials(message[:MAX_MESSAGE + 256])[:MAX_MESSAGE]
