"""Cross-machine sync: every hub holds the whole fleet (docs/sync.md).

Each hub owns the records of the agents it observes and pushes them, versioned, to
its peers; it holds its peers' records without ever judging them. Modules:

* :mod:`hub.sync.records`: the owned, versioned agent record and the owner's log;
* :mod:`hub.sync.merge`: what this hub holds of its peers, and the accept rules;
* :mod:`hub.sync.gpus`: peers' GPU summaries (latest per owner machine);
* :mod:`hub.sync.protocol`: the wire models (bounded pydantic payloads);
* :mod:`hub.sync.server`: the receiving side, shared by HTTP and the in-memory fake;
* :mod:`hub.sync.peer`: the per-peer link state machine (push, reconcile, backoff);
* :mod:`hub.sync.transport`: how messages travel (httpx; :mod:`hub.sync.testing` fakes);
* :mod:`hub.sync.engine`: everything of one hub wired together;
* :mod:`hub.sync.metrics`, :mod:`hub.sync.api`: what Prometheus and operators see.
"""
