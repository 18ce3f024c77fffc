"""Template import (模板批量导入): download the template, upload → every row validated → a dry
run report (row, column, value, reason in Chinese; downloadable as .xlsx) → commit all or nothing.

Committing the same file again for the same project, period and school creates nothing: it
answers with the earlier import. A staged import can be committed by id until it expires; the
commit re-validates everything (window, roster, duplicates) first.
"""

from __future__ import annotations

from aid_service.service.imports.rows import CHUNK_ROWS, SUMMARY_ERRORS, ImportResult, Sink, Upload
from aid_service.service.imports.service import ImportService

__all__ = ["CHUNK_ROWS", "ImportResult", "ImportService", "SUMMARY_ERRORS", "Sink", "Upload"]
