"""Tests that need no database server: pure code, files of the repository, promtool."""
