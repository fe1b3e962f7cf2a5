"""Worker processes the multi-process tests start (run as scripts)."""
