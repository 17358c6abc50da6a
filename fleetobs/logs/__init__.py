"""Log shipping to Loki that never blocks its caller and never loses a line silently.

``model`` (what a line is), ``buffer`` (bounded, least-severe-first), ``batch`` (Loki's
JSON push format), ``push`` (one POST and what its answer means), ``spool`` (where
batches wait while Loki is away), ``shipper`` (the sender thread), ``sinks`` (loguru
and logging front doors), ``stats`` (its metrics). docs/logs.md tells the story.
"""
