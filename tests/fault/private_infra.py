"""A private RabbitMQ node and a private PostgreSQL cluster for the long fault suite.

The suite restarts its broker and freezes its database server, so it must never touch
the machine's shared RabbitMQ (5672) or PostgreSQL (5432): other test runs use them at
the same time. Both are started here as child processes on free loopback ports, with
their data in a temp dir, and torn down at the end of the session (also on failure).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

RABBITMQ_BIN = Path(os.environ.get("XUEJI_FAULT_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.skip("PostgreSQL server binaries not installed under /usr/lib/postgresql")
    return found[-1].parent


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc: no extra dependency)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the command may hold spaces and parentheses: the fields after the last ')'
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


class PrivateBroker:
    """One RabbitMQ node of our own: `rabbit-server` in the foreground as our child."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.node = f"xueji-fault-{os.getpid()}@localhost"
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "log.console = false\nlog.file.level = warning\n")
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")
        self.env = dict(os.environ)
        self.env.update({
            # HOME holds the Erlang cookie the node and rabbitmqctl share (ours, not the machine's).
            "HOME": str(base), "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()), "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "node.pid"), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}"

    def ctl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        done = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> None:
        log = open(self.base / "server.out", "ab")  # noqa: SIM115 - closed when the node ends
        self.proc = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.await_startup()

    def await_startup(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"private RabbitMQ exited: see {self.base / 'log'}")
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=90)  # the CLI alone is slow on a busy machine
                return
            # Broad: under eventlet's patching the timeout may not be stdlib's TimeoutExpired.
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)  # the node is not registered with epmd yet

    def restart_app(self, down_for: float = 2.0) -> None:
        """Stop the broker application (every connection drops), wait, start it again."""
        self.ctl("stop_app")
        time.sleep(down_for)
        self.ctl("start_app")
        self.await_startup()

    def add_vhost(self) -> tuple[str, str]:
        vhost = f"fault-{uuid.uuid4().hex[:10]}"
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return vhost, f"{self.uri}/{vhost}"

    def delete_vhost(self, vhost: str) -> None:
        self.ctl("delete_vhost", vhost, check=False)

    def queues(self, vhost: str) -> dict[str, tuple[int, int, int]]:
        """name → (ready, unacknowledged, consumers) of every queue in the vhost."""
        out = self.ctl("list_queues", "-p", vhost, "--no-table-headers", "name", "messages_ready",
                       "messages_unacknowledged", "consumers")
        found = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 4 and parts[1].isdigit():
                found[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
        return found

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.ctl("stop", timeout=90, check=False)
            self.proc.wait(timeout=60)
        except Exception:  # noqa: BLE001 - killed below
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class PrivatePostgres:
    """One PostgreSQL cluster of our own (initdb into a temp dir, run as `postgres` when we are root)."""

    def __init__(self, base: Path) -> None:
        self.bin = _postgres_bin()
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.user = "postgres"
        self.started = False

    def _as_owner(self, *cmd: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        else:
            self.user = os.environ.get("USER", "postgres")
        subprocess.run(self._as_owner(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                                      "-A", "trust", "-E", "UTF8", "--no-locale"),
                       check=True, capture_output=True, timeout=120)
        # Speed over durability: the cluster lives for one test session.
        opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=300 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        subprocess.run(self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                                      str(self.base / "server.log"), "-o", opts, "-w", "-t", "60", "start"),
                       check=True, capture_output=True, timeout=120)
        self.started = True

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, prefix: str, template: str | None = None) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def pause(self, seconds: float) -> None:
        """SIGSTOP the postmaster and every backend: connections hang, none fail; then SIGCONT."""
        main = self.postmaster_pid()
        pids = [main, *_children(main)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        if not self.started:
            return
        try:
            os.kill(self.postmaster_pid(), signal.SIGCONT)  # never leave it frozen
        except (OSError, ValueError):
            pass
        subprocess.run(self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                      "-w", "-t", "60", "stop"), capture_output=True, timeout=120)
        self.started = False


@pytest.fixture(scope="session")
def private_broker() -> Iterator[PrivateBroker]:
    base = Path(tempfile.mkdtemp(prefix="xueji-fault-rmq-"))
    broker = PrivateBroker(base)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    base = Path(tempfile.mkdtemp(prefix="xueji-fault-pg-"))
    os.chmod(base, 0o755)
    server = PrivatePostgres(base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
