"""Tests of the import hook and the launcher, and of transparency on whole programs (autodurable._hook)."""
