"""The dashboard: server-rendered pages (Jinja templates, a little plain JavaScript) over the
same services as the API and the CLI, for the people who upload files and fix contacts."""

from rollbook.web.app import error_page, install

__all__ = ["error_page", "install"]
