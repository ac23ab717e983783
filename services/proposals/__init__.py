"""The `proposals` service (see README and DOMAIN.md); not built yet."""
