"""Write the gateway's OpenAPI document to gateway/openapi.json (checked by a test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gateway.main import create_app
from gateway.settings import Settings

TARGET = Path(__file__).resolve().parents[1] / "gateway" / "openapi.json"


def render() -> str:
    """The OpenAPI JSON text, stable across runs."""
    spec = create_app(Settings(zizhu_env="test")).openapi()
    return json.dumps(spec, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write (default) or, with --check, compare and fail on difference."""
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            sys.stderr.write("gateway/openapi.json is out of date: run `make openapi`\n")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
