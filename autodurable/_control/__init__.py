"""Acting on stored workflows: starting them, handles, operations, recovery.

Invariant: built on `autodurable._core` and `autodurable._store`; nothing in
the core imports this layer.
"""
