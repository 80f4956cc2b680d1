"""Following the brief where it is written: a git repository (see docs/source.md)."""
