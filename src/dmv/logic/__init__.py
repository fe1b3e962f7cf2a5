"""Z, the logic: training code, libraries, Python, hyperparameters, the environment and git.

``fingerprint`` fingerprints the four parts of the logic that move Z; ``environment``
records where a run trained (recorded, never fingerprinted); ``git`` links a version to
the commit, branch and patches it was trained from.
"""
