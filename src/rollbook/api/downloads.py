"""CSV downloads, the same for the API and the dashboard: an attachment, UTF-8."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, TextIO

from fastapi.responses import Response


def csv_download(filename: str, write: Callable[[TextIO], Any]) -> Response:
    """``write`` fills the file, whole, before anything is sent: a refusal (another account's
    import, say) is still an error answer, not a half-sent file."""
    out = io.StringIO()
    write(out)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
