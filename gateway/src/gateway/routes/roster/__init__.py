"""Roster: students from 学籍 (sync, file import, search, the audited identity read), the 13
special groups (central issue, school verification, self-collection, progress, default levels)
and hardship recognition. Thin: parse, policy, one roster call with the caller, map.

Each area's routes are in a module of their own, all declared on the one `router` of `base`."""

# Areas are imported in the order their routes were declared: requests are matched in the order
# routes are registered. They share one router so that matching needs no extra router level.
# isort: off
from gateway.routes.roster import students
from gateway.routes.roster import batches
from gateway.routes.roster import memberships
from gateway.routes.roster import recognitions

# isort: on
from gateway.routes.roster.base import router
from gateway.schemas.roster.recognitions import PendingRecognitionRead

__all__ = ["router", "PendingRecognitionRead", "students", "batches", "memberships", "recognitions"]
