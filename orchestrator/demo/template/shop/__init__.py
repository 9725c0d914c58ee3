"""A tiny sample shop."""
