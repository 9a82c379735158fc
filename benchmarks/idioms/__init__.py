"""A labelled suite of application idioms for ``benchmarks/transparency.py``.

Nothing here is ever imported or run: the analyser reads the source only. Each
``def`` line carries ``# expect: step|workflow|plain``; see README.md.
"""
