"""The :class:`~dmv.project.Project` facade's methods, one mixin per noun."""
