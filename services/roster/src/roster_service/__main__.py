"""`python -m roster_service serve|migrate|seed-demo`.

The service's modules are imported inside main(): the 学籍 sync's worker processes are spawned,
and a spawned process imports the parent's `__main__` module again (as `__mp_main__`). Imported
at the top, the whole service (SQLAlchemy, gRPC) would load into every worker before its first
row, about 2 s of CPU each."""

import sys


def main() -> int:
    """Entry point of the roster-service command."""
    from zizhu_common.runtime import service_main

    from roster_service import wiring
    from roster_service.settings import Settings

    return service_main(
        settings_factory=Settings,
        build=wiring.build,
        migrate=wiring.migrate,
        seed_demo=wiring.seed_demo_data,
    )


if __name__ == "__main__":
    sys.exit(main())
