-- autodurable schema 10 (SQLite): OpenTelemetry trace context of each workflow
-- (telemetry = true only; NULL otherwise). JSON: "parent", the W3C carrier of the
-- span that started or enqueued it; "execution", the traceparent of the span of
-- its latest execution, which a resumed execution links to.

ALTER TABLE workflows ADD COLUMN trace_context TEXT;
