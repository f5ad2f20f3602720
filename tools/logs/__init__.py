"""Logs: header parsing, template mining, window comparison, RCA reports, sources."""
