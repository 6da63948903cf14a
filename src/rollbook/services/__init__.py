"""The use cases — one transaction each. The CLI, the API and the dashboard call these and
nothing below them; no business rule lives in a shell."""
