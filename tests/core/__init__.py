"""Tests of executing workflows in a process: steps, replay, messages, codec, crashes (autodurable._core)."""
