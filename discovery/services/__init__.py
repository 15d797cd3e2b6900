"""Writes of the discovery engine: one plain function per state change, called by views, commands, tasks and tests."""
