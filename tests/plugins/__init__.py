"""Fixtures by plugin, registered once in pytest.ini (``-p plugins.warehouse -p plugins.aws``).

Tests ask for a fixture by naming it as an argument, never by importing it.
"""
