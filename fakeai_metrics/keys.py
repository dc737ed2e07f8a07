"""API keys are secrets: everything exported or stored names a key by a short one-way id.

``KeyIds`` turns a raw key into its label: a registered alias, or ``key_`` plus the first 12 hex
digits of its SHA-256. The raw key is used only as a cache key in memory and never leaves this
module in any exported value, log line or exception message.
"""

from __future__ import annotations

import hashlib

from .validation import label


def hash_key(api_key: str) -> str:
    return "key_" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


class KeyIds:
    """Raw key -> exported id, with aliases and a bounded cache (hashing costs ~1 us)."""

    def __init__(self, max_cached: int = 10_000) -> None:
        self._ids: dict[str, str] = {}
        self._max_cached = max_cached

    def alias(self, api_key: str, alias: str) -> None:
        """Export ``api_key`` as ``alias`` from now on (a team or tenant name, never the key)."""
        label("api_key", api_key)
        label("alias", alias)
        if alias == api_key:
            raise ValueError("an alias must not be the key itself")
        self._ids[api_key] = alias

    def __call__(self, api_key: str, name: str = "api_key") -> str:
        try:
            found = self._ids.get(api_key)
        except TypeError:  # unhashable: not a string, let the check say so
            found = None
        if found is None:
            label(name, api_key)
            found = hash_key(api_key)
            if len(self._ids) < self._max_cached:
                self._ids[api_key] = found
        return found

    def scrub(self, text: str, api_key: str | None) -> str:
        """``text`` with the raw key, if it appears, replaced by its id."""
        if api_key and api_key in text:
            return text.replace(api_key, self(api_key))
        return text
