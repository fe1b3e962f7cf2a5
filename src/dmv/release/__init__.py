"""X, and what happens after training: release, the serving run, verify and reproduce.

``releases`` releases, selects, deprecates and deletes versions (released ones never
change); ``serving_run`` is the one rule for which run a version serves; ``reproduce``
verifies a version against what it was made from and re-runs its training.
"""
