"""Database work behind the routes, one module per resource; no HTTP here, only `keel.errors`."""
