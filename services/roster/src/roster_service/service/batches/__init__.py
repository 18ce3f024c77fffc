"""Issue batches (中央/省级下发): opening, receiving rows (matched on receipt), committing and
matching in one transaction, cancelling, and the issuer's and schools' views of the rows."""

from __future__ import annotations

from roster_service.service.batches.issuing import BatchOps

__all__ = ["BatchOps"]
