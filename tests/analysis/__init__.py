"""Tests of the static analyser (autodurable._analysis)."""
