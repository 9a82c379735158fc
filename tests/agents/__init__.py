"""Recording at the library boundary: HTTP clients, and agent frameworks run unmodified."""
