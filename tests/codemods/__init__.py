"""Tests of the libcst commands and their runner (autodurable.codemods)."""
