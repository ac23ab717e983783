"""Demo data of `make up`: generated rosters, proposals and liaison records."""
