"""Tests of the store backends, their files and migrations (autodurable._store)."""
