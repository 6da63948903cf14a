"""Storage: the schema, the one owner of connections and transactions, migrations, and the
queries and bulk writes the services use."""

from rollbook.store.database import Store, database_url, lock_account

__all__ = ["Store", "database_url", "lock_account"]
