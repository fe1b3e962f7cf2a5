"""Upkeep of a project's stores: ``backup`` (and restore) and ``fsck``."""
