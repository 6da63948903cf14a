"""Logging for the service: one line per event, no personal data. Request lines carry the
route's template, never its values (rollbook.api.logs); errors carry codes and ids, never
cell contents, names, phones, emails or tokens."""

from __future__ import annotations

import logging
import os


class NoTracebacks(logging.Filter):
    """Keeps exceptions' texts and tracebacks out of the log: they can quote the values that
    caused them (a phone, a name, a row the database refused). The server re-raises an
    unexpected error after answering it, for its own log; what is logged of it is the type —
    the app logged the route and the type already (rollbook.api.errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[0].__name__}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure() -> None:
    level = os.environ.get("ROLLBOOK_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(NoTracebacks())
