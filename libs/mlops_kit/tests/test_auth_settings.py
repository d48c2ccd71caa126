from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import pytest
from mlops_kit.auth import KeyRing, Role, parse_api_keys
from mlops_kit.settings import ServiceSettings

KEY = "k" * 8 + "0123456789abcdef"


class DemoSettings(ServiceSettings):
    service_name: ClassVar[str] = "demo_svc"
    default_port: ClassVar[int] = 8123


def test_key_entries_parse_to_digests() -> None:
    digest = hashlib.sha256(b"other-key-0123456789").hexdigest()
    keys = parse_api_keys(f"admin:ops:{KEY}, viewer:dash:sha256:{digest}")
    assert [(k.name, k.role) for k in keys] == [("ops", Role.admin), ("dash", Role.viewer)]
    assert keys[0].digest == hashlib.sha256(KEY.encode()).hexdigest()
    assert keys[1].plaintext is None


@pytest.mark.parametrize("bad", ["admin:only-two", "root:ops:" + KEY, "ops"])
def test_bad_key_entries_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="role:name:key"):
        parse_api_keys(bad)


def test_keyring_authenticates_by_digest() -> None:
    ring = KeyRing(parse_api_keys(f"editor:ci:{KEY}"))
    principal = ring.authenticate(KEY)
    assert principal is not None and (principal.name, principal.role) == ("ci", Role.editor)
    assert ring.authenticate("wrong" * 5) is None
    assert ring.authenticate(None) is None
    assert KeyRing([]).authenticate(None) is not None


@pytest.mark.parametrize("secret", ["changeme", "short-key", "secret"])
def test_placeholder_or_short_keys_fail_fast(secret: str) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        DemoSettings(api_keys=f"admin:ops:{secret}")


def test_per_service_env_beats_shared_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_LOG_LEVEL", "debug")
    monkeypatch.setenv("MLOPS_DB_POOL_SIZE", "3")
    monkeypatch.setenv("MLOPS_DEMO_SVC_DB_POOL_SIZE", "7")
    settings = DemoSettings()
    assert (settings.log_level, settings.db_pool_size) == ("DEBUG", 7)


def test_env_file_is_read_unless_disabled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / "demo.env"
    env.write_text("MLOPS_DEMO_SVC_PORT=9999\n")
    monkeypatch.setenv("MLOPS_ENV_FILE", str(env))
    assert DemoSettings().bind_port == 9999
    monkeypatch.setenv("MLOPS_ENV_FILE", "")
    assert DemoSettings().bind_port == 8123


def test_defaults_are_embedded_and_loopback(tmp_path: Path) -> None:
    settings = DemoSettings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/demo_svc/metadata.db"
    assert settings.bind_host == "127.0.0.1" and not settings.auth_enabled
    assert DemoSettings(api_keys=f"viewer:v:{KEY}").public_dict()["api_keys"] == "***"
