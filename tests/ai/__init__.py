"""Tests of the AI-assisted rewrite and the MCP server (autodurable._ai)."""
