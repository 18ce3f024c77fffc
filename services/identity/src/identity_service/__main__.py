"""`python -m identity_service serve|migrate`."""

import sys

from zizhu_common.runtime import service_main

from identity_service import wiring
from identity_service.settings import Settings


def main() -> int:
    """Entry point of the identity-service command."""
    return service_main(
        settings_factory=Settings,
        build=wiring.build,
        migrate=wiring.migrate,
        seed_demo=wiring.seed_demo_data,
    )


if __name__ == "__main__":
    sys.exit(main())
