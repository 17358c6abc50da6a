"""Fakes and helpers shipped with fleetobs for its own tests and for users' tests."""
