"""The `liaison` service (see README and DOMAIN.md); not built yet."""
