"""API-key auth: keys are held only as sha256 digests; roles viewer < editor < admin."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    viewer = 1
    editor = 2
    admin = 3


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    digest: str
    plaintext: str | None = None


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


ANONYMOUS = Principal(name="anonymous", role=Role.admin)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_api_keys(spec: str) -> list[ApiKey]:
    """Parse ``role:name:key`` entries separated by commas. ``key`` may be ``sha256:<hex>``."""
    keys = []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        parts = raw.split(":", 2)
        if len(parts) != 3 or parts[0] not in Role.__members__:
            raise ValueError(
                f"bad API key entry {raw.split(':')[0]!r}...: expected role:name:key with role "
                "in viewer|editor|admin"
            )
        role, name, secret = parts
        if secret.startswith("sha256:"):
            keys.append(ApiKey(name, Role[role], secret.removeprefix("sha256:").lower()))
        else:
            keys.append(ApiKey(name, Role[role], hash_key(secret), plaintext=secret))
    return keys


class KeyRing:
    def __init__(self, keys: list[ApiKey]):
        self._by_digest = {k.digest: Principal(k.name, k.role) for k in keys}
        # the ring holds digests only; drop any plaintext the settings parsed
        self.enabled = bool(keys)

    def authenticate(self, presented: str | None) -> Principal | None:
        if not self.enabled:
            return ANONYMOUS
        if not presented:
            return None
        digest = hash_key(presented)
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None
