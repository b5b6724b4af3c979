"""The archive: snapshot files (one per fetch) and the changes database."""
