"""The sync's worker processes import only what preparing rows needs: each spawned worker pays
its imports before its first row (SQLAlchemy and the service layer alone took 1.8 s of CPU a
worker, about 4 % of a million-row sync on 2 cores)."""

from __future__ import annotations

import subprocess
import sys


def _heavy_modules_after(statement: str) -> list[str]:
    """Modules of the database and RPC layers loaded by `statement` in a fresh interpreter."""
    code = (
        f"import sys; {statement}; "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'grpc') or m.startswith(('roster_service.service', "
        "'roster_service.repository')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_worker_module_does_not_import_the_database_layer() -> None:
    assert (
        _heavy_modules_after(
            "import roster_service.prepare as p; "
            "assert callable(p._prepare_lines) and callable(p._check_issued)"
        )
        == []
    )


def test_the_service_entry_module_is_light_for_spawned_workers() -> None:
    # A worker spawned by `python -m roster_service serve` imports roster_service.__main__ again.
    assert (
        _heavy_modules_after("import roster_service.__main__ as m; assert callable(m.main)") == []
    )
    # …and the check itself sees those layers when they are loaded.
    assert "sqlalchemy" in _heavy_modules_after("import roster_service.wiring")
