"""The `provincial` service (see README and DOMAIN.md); not built yet."""
