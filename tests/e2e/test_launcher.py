"""`make run` itself (`python -m deploy.local`): the embedded default starts from nothing, seeds the
demo data, prints the URL and the demo logins, and those logins work over HTTP; Ctrl-C stops every
process; a second run on the same data directory starts again and keeps the data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pyotp
from zizhu_common.devservers import free_port

ROOT = Path(__file__).resolve().parents[2]
BANNER_END = "=" * 72
LOGIN_ROW = re.compile(r"^\s{4}(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


class Launcher:
    """`python -m deploy.local` as a child process, its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.local"], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_banner(self, timeout_s: float = 300) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = list(self.lines)
            starts = [i for i, line in enumerate(text) if "已启动" in line]
            if starts and BANNER_END in text[starts[0] + 1 :]:
                return text[starts[0] :]
            assert self.proc.poll() is None, "launcher exited:\n" + "\n".join(text[-60:])
            time.sleep(0.5)
        raise AssertionError("no banner in time:\n" + "\n".join(self.lines[-60:]))

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self._reader.join(timeout=5)

    def kill(self) -> None:
        """Stop a launcher a failed test left running: first as Ctrl-C does, so that it stops
        nats-server and redis-server too (they run in sessions of their own, which a kill of
        the launcher's process group does not reach), then by force."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _post(url: str, body: dict, token: str = "") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str, token: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _logins(banner: list[str]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for line in banner:
        match = LOGIN_ROW.match(line)
        if match and match.group(3) != "username":
            rows.append(match.groups())
    return rows


# The TOTP time step each username last logged in with: identity refuses a step already used
# (replay), so a second login within the same 30 s waits for the next step.
_USED_STEPS: dict[str, int] = {}


def _log_in(gateway: str, username: str, password: str, totp_secret: str) -> str:
    body = {"username": username, "password": password}
    if totp_secret != "-":
        totp = pyotp.TOTP(totp_secret)
        while (step := totp.timecode(datetime.now(UTC))) <= _USED_STEPS.get(username, -1):
            time.sleep(totp.interval - time.time() % totp.interval + 0.2)
        _USED_STEPS[username] = step
        body["totp_code"] = totp.at(step * totp.interval)
    status, data = _post(f"{gateway}/api/v1/auth/login", body)
    assert status == 200 and data["status"] == "authenticated", (username, status, data)
    return data["access_token"]


def test_make_run_starts_seeds_prints_logins_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ports = {"GATEWAY": free_port(), "NATS": free_port(), "NATS_MONITOR": free_port(),
             "REDIS": free_port()}  # fmt: skip
    grpc_base = free_port()
    while not all(_port_free(grpc_base + i) for i in range(5)):
        grpc_base = free_port()
    env = {
        **os.environ,
        "ZIZHU_VAR_DIR": str(tmp_path / "var"),
        "ZIZHU_GRPC_BASE_PORT": str(grpc_base),
        **{f"ZIZHU_{name}_PORT": str(port) for name, port in ports.items()},
    }
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"

    first = Launcher(env)
    try:
        banner = first.wait_for_banner()
        assert any(gateway in line for line in banner), banner
        logins = _logins(banner)
        assert len(logins) >= 3, banner
        # every printed login works, with its TOTP secret where one is printed
        for org, _role, username, password, totp in logins:
            token = _log_in(gateway, username, password, totp)
            status, me = _get(f"{gateway}/api/v1/me", token)
            assert status == 200 and me["org_code"] == org, me
        assert first.interrupt() == 0, "\n".join(first.lines[-40:])
    finally:
        first.kill()
    assert any("已全部停止" in line for line in first.lines)
    assert (tmp_path / "var" / "db" / "identity.db").exists()

    second = Launcher(env)  # the same var/: data kept, seeding finds it in place
    try:
        banner = second.wait_for_banner()
        org, _role, username, password, totp = _logins(banner)[0]
        token = _log_in(gateway, username, password, totp)
        assert _get(f"{gateway}/api/v1/me", token)[0] == 200
        assert second.interrupt() == 0, "\n".join(second.lines[-40:])
    finally:
        second.kill()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
