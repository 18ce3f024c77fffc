"""Settings refuse placeholder secrets outside dev; logs are JSON lines with the request id."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError
from zizhu_common.logs import JsonFormatter, request_id_var
from zizhu_common.settings import ServiceSettings


def test_dev_accepts_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIZHU_ENV", "dev")
    assert ServiceSettings().secret_key


@pytest.mark.parametrize("secret", ["changethis", "short-but-real", ""])
def test_prod_refuses_placeholder_or_short_secrets(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("ZIZHU_ENV", "prod")
    monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        ServiceSettings()


def test_prod_accepts_a_real_secret_and_reads_plain_env_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZIZHU_ENV", "prod")
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@db/aid")
    monkeypatch.setenv("GRPC_PORT", "50099")
    s = ServiceSettings()
    assert (s.database_url, s.grpc_port) == ("postgresql+asyncpg://u@db/aid", 50099)


def test_json_log_line_carries_request_id_and_extras() -> None:
    record = logging.LogRecord("aid", logging.INFO, __file__, 1, "导入 %d 行", (3,), None)
    record.rows = 3
    token = request_id_var.set("req-9")
    try:
        line = JsonFormatter("aid").format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "导入 3 行"
    assert entry["request_id"] == "req-9"
    assert entry["service"] == "aid" and entry["rows"] == 3
