"""Alembic environment of the decision database, run by :func:`intelligence.storage.database.migrate`.

The connection is handed over in ``config.attributes``; nothing here reads a URL or a file.
"""

from __future__ import annotations

from alembic import context

from intelligence.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
