"""`nslab ...` for people."""
