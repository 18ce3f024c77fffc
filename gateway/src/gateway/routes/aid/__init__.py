"""Aid (资助): projects, periods, time windows, records (entry, template import, submission, the
multi-level audit, revocation), exports and statistics. Thin: parse, policy, one aid call with the
caller and a deadline, map.

Each area's routes are in a module of their own, all declared on the one `router` of `base`."""

# Areas are imported in the order their routes were declared: requests are matched in the order
# routes are registered. They share one router so that matching needs no extra router level.
# isort: off
from gateway.routes.aid import projects
from gateway.routes.aid import periods
from gateway.routes.aid import records
from gateway.routes.aid import imports
from gateway.routes.aid import stats

# isort: on
from gateway.routes.aid.base import router

__all__ = ["router", "projects", "periods", "records", "imports", "stats"]
