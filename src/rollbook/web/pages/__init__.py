"""The dashboard's pages, a module per area."""
