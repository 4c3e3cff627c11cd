"""Arrives with its own issue."""
