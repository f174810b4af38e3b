"""API keys: who may call the API and the console, and as what role.

``API_KEYS`` holds ``name:role:sha256hex`` entries, comma separated: the SHA-256 of each key, never the
key itself (``aep-activator api-key NAME ROLE`` prints a new key and its entry). A presented key is
hashed and compared with every stored hash in constant time (``hmac.compare_digest``, all of them,
whichever matches), so neither the answer nor its timing tells how much of a key was right.

Roles: ``producer`` starts runs and reads them (and the quota, and the metrics); ``ops`` also cancels
and resumes. A key's name and role go into the run's timeline as the actor: ``api:<name> (<role>)``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

Role = Literal["producer", "ops"]
ROLES: tuple[Role, ...] = ("producer", "ops")


@dataclass(frozen=True)
class Principal:
    """Who made a request: a key's name and role (never the key)."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"api:{self.name} ({self.role})"

    @property
    def can_operate(self) -> bool:
        return self.role == "ops"


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    digest: bytes

    def __repr__(self) -> str:  # the digest stays out of reprs and logs
        return f"_Entry({self.principal!r})"


class KeyRing:
    """The configured keys, by their SHA-256."""

    def __init__(self, entries: list[_Entry]) -> None:
        if not entries:
            raise ValueError("no API keys")
        self._entries = entries

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """``name:role:sha256hex[,…]`` (validated by the settings: API_KEY_ENTRY)."""
        entries = []
        for item in text.split(","):
            name, role, digest = item.strip().split(":")
            if role not in ROLES:
                raise ValueError(f"API_KEYS: {name}: role must be producer or ops")
            entries.append(_Entry(Principal(name, role), bytes.fromhex(digest)))
        names = [e.principal.name for e in entries]
        if len(set(names)) != len(names):
            raise ValueError("API_KEYS: a key name is listed twice")
        return cls(entries)

    def verify(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).digest()
        found: Principal | None = None
        for entry in self._entries:  # every entry, so the time does not depend on which one matched
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        return found

    def __repr__(self) -> str:
        return f"KeyRing({[e.principal.name for e in self._entries]})"


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str, role: Role) -> tuple[str, str]:
    """A fresh random key and its ``API_KEYS`` entry."""
    key = "aepk_" + secrets.token_urlsafe(32)
    return key, f"{name}:{role}:{digest_of(key)}"
