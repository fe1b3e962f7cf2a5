"""Reading versions: one version explained, two versions compared, a model's tree.

``explain`` (``dmv show``), ``diff`` (``dmv diff``), ``tree`` (the edges the registry
recorded), ``tree_arrange`` (stages, bands and the text drawing) and ``tree_layout``
(coordinates for the web UI and notebooks).
"""
