"""Executing workflows in this process: the layer a step is checkpointed in.

Context and replay (`_context`, `_boundary`), steps and watched calls (`_steps`,
`_watch`), workflows and their branches (`_workflows`, `_concurrency`), messages
and events (`_messages`), deterministic clocks and randomness (`_clocks`),
options and their proxy (`_options`, `_proxy`), the decorators (`_decorators`,
`_wrappers`), the codec (`_codec`, `_codec_shapes`), configuration (`_config`,
`_app_versions`), the runtime and its executor record (`_runtime`, `_executor`),
and the sentinel that notices unrecorded I/O (`_sentinel`, `_report`).

Invariant: the core imports only `autodurable._store`, `autodurable._errors`
and `autodurable._project` below it; acting on *stored* workflows (handles,
operations, recovery) is `autodurable._control`'s, above it.
"""
