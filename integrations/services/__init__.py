"""Writes: every state change of the integrations app goes through a function in this package."""
