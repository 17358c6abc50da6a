"""HTTP API routers of the hub (one module per resource)."""
