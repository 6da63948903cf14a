"""rollbook — a contact store for teams that text students."""
