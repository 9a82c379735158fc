"""AI-assisted durability: a model proposes, the analyser verifies, the codemod writes.

- `_guide`: the guide for coding assistants, generated from the public API.
- `_context`: what a model is shown about a module (source, plan, blind spots).
- `_settings`, `_client`: where the model lives; chat completions over urllib.
- `_schema`: the strict plan a model answers with.
- `_apply`, `_cst`: the plan applied in memory (splits, keys, roles via the
  codemod, options); `_verify`: the result checked by the analyser.
- `_rewrite`: the bounded propose / verify / feed back loop; `_commands`: the CLI.
- `_mcp`: the same tools for coding agents, over the Model Context Protocol.

Invariants of the package:
- A model's answer is data, never code that runs: it is validated against a
  schema, applied by our transformers, and verified before it is shown.
- Nothing is written without an explicit request (``--write``,
  ``dry_run=False``), never a file whose new text does not parse, and never
  a module whose plan did not verify.
- The API key is never printed, logged or put in a message.
- Importing this package imports neither libcst nor mcp (the optional extras).
"""
