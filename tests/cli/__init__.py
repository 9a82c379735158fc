"""Tests of the command line (autodurable._cli)."""
