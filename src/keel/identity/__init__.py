"""Who is calling: tenants, API keys and the `Principal` every query is scoped by."""
