"""`python -m roster_service serve|migrate|seed-demo`."""

import sys

from zizhu_common.runtime import service_main

from roster_service import wiring
from roster_service.settings import Settings


def main() -> int:
    """Entry point of the roster-service command."""
    return service_main(
        settings_factory=Settings,
        build=wiring.build,
        migrate=wiring.migrate,
        seed_demo=wiring.seed_demo_data,
    )


if __name__ == "__main__":
    sys.exit(main())
