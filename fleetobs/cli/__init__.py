"""The ``fleetobs`` command line. One module per command; heavy imports stay inside commands
so that quick commands (``fleetobs probe`` as a compose healthcheck) start fast."""
