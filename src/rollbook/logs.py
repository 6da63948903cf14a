"""Logging for the service: one line per event, no personal data. Request lines carry the
route's template, never its values (rollbook.api.logs); errors carry codes and ids, never
cell contents, names, phones, emails or tokens."""

from __future__ import annotations

import logging
import os


def configure() -> None:
    level = os.environ.get("ROLLBOOK_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True
    )
