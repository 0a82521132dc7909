"""Reporting a run: per-step metrics files, the closing summary and table, and the plots."""
