"""Helpers for the Sparkify warehouse scripts: configuration, connections, steps.

`dwh.local` holds everything that differs on the embedded local warehouse.
"""
