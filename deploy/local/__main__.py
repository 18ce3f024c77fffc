"""`make run`: start nats-server, redis-server, the five services and the gateway, seed demo data,
print the URLs and logins, and stop everything on Ctrl-C. A second run keeps var/."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from zizhu_common import devservers

from deploy.local import seed
from deploy.local.config import ROOT, SERVICES, LocalLayout

log = logging.getLogger("zizhu.local")

START_TIMEOUT_S = 180
STOP_GRACE_S = 15


class Process:
    """A child process with its log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        """Wait until deadline, then SIGKILL."""
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _check_free(port: int, what: str) -> None:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            sys.exit(
                f"端口 {port}（{what}）已被占用：请先停止占用它的进程，"
                f"或设置环境变量改用其他端口（见 README）。"
            )


def _healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Run Zizhu's embedded default until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    layout = LocalLayout()
    for path in (layout.db_dir, layout.log_dir, layout.nats_dir, layout.redis_dir):
        path.mkdir(parents=True, exist_ok=True)
    ports = {
        "gateway": layout.gateway_port,
        "nats-server": layout.nats_port,
        "nats monitor": layout.nats_monitor_port,
        "redis-server": layout.redis_port,
        **{s: layout.grpc_port(s) for s in SERVICES},
    }
    for what, port in ports.items():
        _check_free(port, what)

    started = time.monotonic()
    nats = devservers.start_nats(
        data_dir=layout.nats_dir, port=layout.nats_port, monitor_port=layout.nats_monitor_port,
        sync_always=True,
    )  # fmt: skip
    redis = devservers.start_redis(data_dir=layout.redis_dir, port=layout.redis_port)
    base_env = {
        **os.environ,
        "ZIZHU_ENV": "dev",
        "NATS_URL": nats.url,
        "REDIS_URL": redis.url,
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "PYTHONUNBUFFERED": "1",
    }
    processes: list[Process] = []
    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\n正在停止所有进程 …", flush=True)
        for p in reversed(processes):
            p.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in reversed(processes):
            p.wait_or_kill(deadline)
        redis.stop()
        nats.stop()
        print("已全部停止。数据保留在", layout.var, flush=True)

    # Ctrl-C stops everything even where SIGINT came in ignored (a launcher started from a
    # background job inherits the ignore, and Python then raises no KeyboardInterrupt).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:

        def service_env(svc: str) -> dict[str, str]:
            return {
                **base_env,
                "DATABASE_URL": layout.database_url(svc),
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(layout.grpc_port(svc)),
                **{f"{s.upper()}_ADDR": f"127.0.0.1:{layout.grpc_port(s)}" for s in SERVICES},
            }

        for svc in SERVICES:
            argv = [sys.executable, "-m", f"{svc}_service", "serve"]
            processes.append(Process(svc, argv, service_env(svc), layout.log_dir / f"{svc}.log"))
        gw_env = {
            **base_env,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(layout.gateway_port),
            "AUDIT_SPOOL_DIR": str(layout.var / "audit-spool"),
            **{f"{s.upper()}_ADDR": f"127.0.0.1:{layout.grpc_port(s)}" for s in SERVICES},
        }
        argv = [sys.executable, "-m", "gateway", "serve"]
        processes.append(Process("gateway", argv, gw_env, layout.log_dir / "gateway.log"))

        deadline = time.monotonic() + START_TIMEOUT_S
        status, body = 0, ""
        while time.monotonic() < deadline:
            dead = [p for p in processes if not p.alive()]
            if dead:
                for p in dead:
                    print(f"\n进程 {p.name} 启动失败，日志 {p.log_path} 末尾：\n{p.log_tail()}")
                stop_all()
                return 1
            status, body = _healthz(layout.gateway_port)
            if status == 200:
                break
            time.sleep(0.3)
        else:
            print(f"\n{START_TIMEOUT_S} 秒内服务未全部就绪：{body}")
            stop_all()
            return 1

        try:
            logins = seed.run(service_env)
        except seed.SeedError as exc:
            print(f"\n{exc}")
            stop_all()
            return 1
        elapsed = time.monotonic() - started
        _print_banner(layout, logins, elapsed, nats.url, redis.url)
        while True:
            time.sleep(1)
            dead = [p for p in processes if not p.alive()]
            if dead:
                for p in dead:
                    print(f"\n进程 {p.name} 意外退出，日志 {p.log_path} 末尾：\n{p.log_tail()}")
                stop_all()
                return 1
    except KeyboardInterrupt:
        stop_all()
        return 0
    except BaseException:
        stop_all()
        raise


def _print_banner(
    layout: LocalLayout, logins: list[seed.Login], elapsed: float, nats_url: str, redis_url: str
) -> None:
    gw = f"http://127.0.0.1:{layout.gateway_port}"
    lines = [
        "",
        "=" * 72,
        f"  资助 Zizhu 已启动（{elapsed:.1f} 秒） — 按 Ctrl-C 停止",
        f"  网关 Gateway:      {gw}",
        f"  API 文档 OpenAPI:  {gw}/docs   ({gw}/api/v1/openapi.json)",
        f"  健康检查 Health:   {gw}/healthz",
        f"  NATS: {nats_url}   Redis: {redis_url}",
        f"  数据目录 Data:     {layout.var}   日志 Logs: {layout.log_dir}",
        "",
    ]
    if logins:
        lines.append("  演示账号 Demo logins (POST /api/v1/auth/login):")
        lines.append(f"    {'org':<12} {'role':<12} {'username':<18} {'password':<12} TOTP secret")
        for login in logins:
            totp = login.totp_secret or "-"
            lines.append(
                f"    {login.org:<12} {login.role:<12} {login.username:<18} {login.password:<12} {totp}"
            )
        lines.append("    TOTP：用任一验证器按上列密钥生成 6 位动态码（审核员、管理员登录时须填）")
    else:
        lines.append("  演示账号 Demo logins: （无）")
    lines.append("=" * 72)
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
