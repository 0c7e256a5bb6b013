"""`make run`: the whole platform on one machine, with demo data.

    .venv/bin/python -m deploy.run

Migrates every service database, declares the messaging topology, starts every process of
deploy/Procfile with honcho, waits until each service answers `health()` over RPC, seeds
the demo data the first time, then prints the URL and the demo logins. Ctrl-C (or
SIGTERM) stops everything it started.

Environment (defaults in brackets):
    XUEJI_DATA_DIR      SQLite files and the development secret [var/]
    XUEJI_AMQP_URI      RabbitMQ [amqp://guest:guest@127.0.0.1:5672/]
    XUEJI_HOST / XUEJI_PORT   where the gateway listens [127.0.0.1 / 8000]
    XUEJI_SECRET_KEY    gateway session key [made once, kept in $XUEJI_DATA_DIR/secret_key]
    <SERVICE>_DATABASE_URL    a service's database [SQLite in $XUEJI_DATA_DIR]
    XUEJI_SKIP_SEED=1   start without loading demo data
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import unicodedata
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "deploy" / "Procfile"
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
READY_TIMEOUT = 60.0
HEALTH_TIMEOUT = 2.0
SEED_RPC_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0  # honcho itself kills what has not stopped 5 s after SIGTERM

# Eventlet's deprecation notice on import says nothing the operator can act on.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


class Stop(BaseException):
    """SIGINT or SIGTERM: stop everything, exit 0. Like KeyboardInterrupt, no `except
    Exception` on the way (e.g. around a health probe) may swallow it."""


class NotReady(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"xueji: {message}", flush=True)


def dev_secret(data_dir: Path) -> str:
    """A session key kept across restarts, so logins survive them in development."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def prepare_environment(env: dict[str, str]) -> dict[str, str]:
    """Defaults for every setting, shared by this process and everything honcho starts."""
    data_dir = Path(env.get("XUEJI_DATA_DIR") or "var")
    data_dir = (data_dir if data_dir.is_absolute() else ROOT / data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["XUEJI_DATA_DIR"] = str(data_dir)
    env.setdefault("XUEJI_AMQP_URI", DEFAULT_AMQP_URI)
    env.setdefault("XUEJI_HOST", "127.0.0.1")
    env.setdefault("XUEJI_PORT", "8000")
    env.setdefault("XUEJI_SECRET_KEY", dev_secret(data_dir))
    env["PYTHONUNBUFFERED"] = "1"  # log lines appear as they happen under honcho
    # The Procfile names `nameko`, `gunicorn`: this interpreter's bin directory first.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def migrate_all() -> None:
    from services.catalog import SERVICES
    from services.common.migrate import upgrade

    for name in SERVICES:
        upgrade(name)
    say(f"migrated {', '.join(SERVICES)}")


def declare_topology(uri: str) -> None:
    from services.catalog import all_service_classes
    from services.common.topology import bindings_of, declare

    declared = declare(uri, bindings_of(all_service_classes()))
    say(f"topology declared ({len(declared)} handler queues)")


def port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def start_processes(env: dict[str, str]) -> subprocess.Popen[bytes]:
    honcho = Path(sys.executable).parent / "honcho"
    # Its own session: a Ctrl-C reaches only this runner, which stops honcho in order.
    return subprocess.Popen(
        [str(honcho), "-f", str(PROCFILE), "-d", str(ROOT), "start"],
        env=env, cwd=ROOT, stdin=subprocess.DEVNULL, start_new_session=True,
    )


def stop_processes(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # honcho terminates every process, kills after 5 s
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def check_alive(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        raise NotReady(f"honcho exited (code {proc.returncode}): a process failed to start; see its lines above")


def wait_for_services(uri: str, proc: subprocess.Popen[bytes]) -> dict[str, dict[str, Any]]:
    """Every service's `health()` answer, once all say ok; bounded by READY_TIMEOUT."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from services.catalog import SERVICES

    deadline = time.monotonic() + READY_TIMEOUT
    answers: dict[str, dict[str, Any]] = {}
    pending = list(SERVICES)
    while pending:
        check_alive(proc)
        try:
            with ClusterRpcProxy({"AMQP_URI": uri}, timeout=HEALTH_TIMEOUT) as rpc:
                for name in list(pending):
                    try:
                        answer = getattr(rpc, name).health()
                    except Exception:  # noqa: BLE001 - not consuming yet (unknown service, timeout)
                        continue
                    if isinstance(answer, dict) and answer.get("status") == "ok":
                        answers[name] = answer
                        pending.remove(name)
                        say(f"{name} ready")
        except Exception as exc:  # noqa: BLE001 - kombu's connection errors are not all OSError
            say(f"broker not reachable yet: {exc}")
        if pending:
            if time.monotonic() > deadline:
                raise NotReady(f"no healthy answer within {READY_TIMEOUT:.0f}s from: {', '.join(pending)}")
            time.sleep(1)
    return answers


def wait_for_gateway(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        check_alive(proc)
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT):
                return
        except urllib.error.HTTPError:
            return  # it answered HTTP, whatever the page says
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise NotReady(f"the gateway did not answer at {url} within {READY_TIMEOUT:.0f}s")
        time.sleep(0.5)


def seed_if_needed(uri: str, data_dir: Path) -> bool:
    """Seeds the first time (roster has no students), or finishes a seed that was cut
    short; True when it seeded. `seed-state` in the data dir says which of the two."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from deploy.seed import seed, seed_context

    state = data_dir / "seed-state"
    with ClusterRpcProxy({"AMQP_URI": uri}, context_data=seed_context(), timeout=SEED_RPC_TIMEOUT) as rpc:
        started = state.exists() and state.read_text().strip() == "started"
        if rpc.roster.health().get("students", 0) > 0 and not started:
            say("demo data present; not seeding")
            return False
        say("finishing the demo data of an earlier run" if started else "loading demo data (first run)")
        state.write_text("started\n")
        seed(rpc, log=lambda line: say(line))
        state.write_text("done\n")
        return True


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)


def logins_table() -> list[str]:
    from deploy.seed import DEMO_ACCOUNTS
    from services.common.caller import ROLE_LABELS

    def scope(kind: str, ids: tuple[str, ...]) -> str:
        return {"institution": "全校", "self": "本人"}.get(kind) or f"班级 {'、'.join(ids)}"

    rows = [("账号", "角色", "数据范围")] + [
        (a.username, ROLE_LABELS[a.role], scope(a.scope_kind, a.scope_ids)) for a in DEMO_ACCOUNTS
    ]
    widths = [max(_width(r[i]) for r in rows) + 2 for i in range(2)]
    return ["  " + _pad(u, widths[0]) + _pad(r, widths[1]) + s for u, r, s in rows]


def banner(url: str) -> str:
    from deploy.seed import DEMO_PASSWORD

    rule = "=" * 64
    lines = [rule, f"  学籍 xueji 已就绪 (ready): {url}", "", "  演示账号（密码均为 " + DEMO_PASSWORD + "）:",
             *logins_table(), "", "  按 Ctrl-C 停止全部进程。", rule]
    return "\n".join(lines)


def _raise_stop(signum: int, frame: object) -> None:
    raise Stop()


def run() -> int:
    os.chdir(ROOT)
    env = prepare_environment(dict(os.environ))
    os.environ.update(env)  # migrations and RPC below use the same settings
    uri, host, port = env["XUEJI_AMQP_URI"], env["XUEJI_HOST"], int(env["XUEJI_PORT"])
    url = f"http://{host}:{port}/"
    if port_in_use(host, port):
        say(f"{host}:{port} is already in use (another `make run`?); set XUEJI_PORT to use another port")
        return 1

    migrate_all()
    declare_topology(uri)
    proc: subprocess.Popen[bytes] | None = None
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        proc = start_processes(env)
        wait_for_services(uri, proc)
        wait_for_gateway(url, proc)
        if env.get("XUEJI_SKIP_SEED") != "1":
            seed_if_needed(uri, Path(env["XUEJI_DATA_DIR"]))
        print(banner(url), flush=True)
        proc.wait()
        say(f"honcho stopped (code {proc.returncode}); a process exited, so all were stopped")
        return proc.returncode or 1
    except Stop:
        say("stopping")
        return 0
    except (NotReady, TimeoutError) as exc:
        say(f"not ready: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - say what failed, then stop what we started
        say(f"failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if proc is not None:
            code = stop_processes(proc)
            say(f"all processes stopped (honcho code {code})")


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
