"""Tests of executing workflows: steps, replay, messages, codec, crashes (autodurable._core)."""
