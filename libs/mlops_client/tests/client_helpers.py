"""Shared by the client's tests (imported by name: the tests dir is on pytest's pythonpath)."""

import secrets

KEYS = {role: secrets.token_hex(16) for role in ("admin", "editor", "viewer")}
