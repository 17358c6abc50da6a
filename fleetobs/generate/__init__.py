"""Everything ``fleetobs build`` generates from the topology.

One rule for where things live: the generator of a deployable folder is the package
``fleetobs.generate.<folder>``, and what it renders is the top-level folder of the same
name (``prometheus/``, ``dashboards/``, ``compose/``), which operators deploy from. Those
folders are entirely generated and committed; ``fleetobs build --check`` (and
tests/fleetobs/generate/test_drift.py) fails when they differ from a fresh rendering.

The generators live inside the ``fleetobs`` package rather than beside their output
because ``prometheus`` and ``compose`` are also names of PyPI packages (docker-compose
1.x installs a top-level ``compose`` module): top-level Python packages of those names
would shadow them or be shadowed.
"""
