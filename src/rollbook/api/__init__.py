"""The REST API: a thin shell over the services (``create_app``)."""

from rollbook.api.app import ApiSettings, create_app

__all__ = ["ApiSettings", "create_app"]
