"""Tests of the import hook, the launcher and transparency on programs (autodurable._hook)."""
