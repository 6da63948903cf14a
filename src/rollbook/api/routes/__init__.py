"""The API's routes, a module per resource, all under one versioned prefix."""

API_PREFIX = "/api/v1"
