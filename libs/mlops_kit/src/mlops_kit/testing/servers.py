"""Private Redis and PostgreSQL servers for fault tests: started on free loopback ports, owned by
the test, so a test may freeze them (SIGSTOP) without touching the shared development servers."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from mlops_kit.testing.backends import free_port, wait_until


@dataclass
class PrivateServer:
    """A server process in its own process group (a server and its children freeze together)."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the server and every process it started (it keeps its sockets: connects are
        accepted by the kernel, nothing answers) for the block; SIGCONT afterwards, whatever
        happens. The parent stops first, so it forks nothing new meanwhile."""
        with frozen_process(self.process.pid):
            yield

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_bytes()[-chars:].decode(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def frozen_process(pid: int) -> Iterator[None]:
    """SIGSTOP `pid` and its descendants for the block (e.g. an `S3Server`'s process), then
    SIGCONT them, whatever happens."""
    stopped: list[int] = []
    try:
        for each in [pid, *_descendants(pid)]:
            _signal(each, signal.SIGSTOP)
            stopped.append(each)
        yield
    finally:
        for each in reversed(stopped):
            _signal(each, signal.SIGCONT)


def _descendants(root: int) -> list[int]:
    """Every process below `root` (PostgreSQL backends each lead their own process group, so
    signalling the postmaster's group would miss them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


def _spawn(
    name: str, cmd: list[str], workdir: Path, user: str | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=workdir,
        user=user,
        preexec_fn=_die_with_parent,
    )
    return process, log_path


def _die_with_parent() -> None:
    # a test run that is killed must not leave a (perhaps frozen) server behind: SIGKILL reaches
    # stopped processes too
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _started(server: PrivateServer, check: object, timeout: float = 60) -> PrivateServer:
    def ready() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with code {server.process.returncode}")
        return bool(check())  # type: ignore[operator]

    try:
        wait_until(ready, timeout=timeout, what=f"private {server.name}", interval=0.1)
    except Exception as exc:
        tail = server.log_tail()
        server.stop()
        raise RuntimeError(f"the private {server.name} did not start: {exc}\n{tail}") from None
    return server


def start_redis_server(workdir: Path) -> PrivateServer:
    """`redis-server` (on PATH) on a free port, no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH: install Redis to run the fault tests")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process, log_path = _spawn("redis", cmd, workdir)
    server = PrivateServer("redis", f"redis://127.0.0.1:{port}/0", process, workdir, log_path)

    def pong() -> bool:
        import redis

        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1) as conn:
            return bool(conn.ping())

    return _started(server, pong)


def postgres_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb and postgres (or MLOPS_TEST_PG_BIN)."""
    configured = os.environ.get("MLOPS_TEST_PG_BIN")
    candidates = [Path(configured)] if configured else []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        majors = sorted((int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True)
        candidates += [root / str(major) / "bin" for major in majors]
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    raise RuntimeError("no PostgreSQL server binaries (initdb, postgres) found; set MLOPS_TEST_PG_BIN")


def start_postgres_server() -> PrivateServer:
    """A throw-away PostgreSQL cluster (initdb, trust auth, fsync off) on a free port. PostgreSQL
    refuses to run as root, so as root the cluster belongs to the `postgres` user; its directory
    is made outside pytest's (root-only) temp tree for that reason."""
    bin_dir = postgres_bin_dir()
    workdir = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    user = _postgres_user()
    data = workdir / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    init = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8"],
        capture_output=True,
        cwd=workdir,
        user=user,
        timeout=120,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        output = (init.stdout + init.stderr).decode(errors="replace")
        raise RuntimeError(f"initdb failed: {output}")
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(workdir),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "16MB",
        "max_connections": "50",
    }
    cmd = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
    for key, value in settings.items():
        cmd += ["-c", f"{key}={value}"]
    process, log_path = _spawn("postgres", cmd, workdir, user)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    server = PrivateServer("postgres", url, process, workdir, log_path)

    def accepts() -> bool:
        with psycopg.connect(server.url, connect_timeout=2):
            return True

    return _started(server, accepts)


def _postgres_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root needs a `postgres` user to own the private cluster") from None
    return "postgres"
