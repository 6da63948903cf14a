"""Alembic's entry point: runs migrations on the connection rollbook hands it."""

from alembic import context

from rollbook.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
connection.commit()
