"""libcst codemod commands that write the autodurable plan into source, or take it out.

- `make_durable.MakeDurableCommand`: the decorators and recorded sites that
  ``autodurable run`` applies at import time, from the same analysis;
- `strip_durable.StripDurableCommand`: the inverse, back to plain functions.

Run them with ``autodurable codemod PATH...`` (a diff by default, ``--write``
to apply, ``--strip`` for the inverse) or with libcst's own runner, given
``modules: [autodurable.codemods]`` in a ``.libcst.codemod.yaml``::

    python -m libcst.tool codemod make_durable.MakeDurableCommand PATH

The top-level ``codemods`` package is a deprecated alias of this one, kept for
one release so that ``modules: [codemods]`` keeps working.

Private modules: `_plans` (the project's plan, from the analyser) and
`_imports` (top-level imports).
"""
