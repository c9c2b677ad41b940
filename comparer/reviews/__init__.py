"""Qualitative review: every comparison and vote in one SQLite file, tallies, exports."""
