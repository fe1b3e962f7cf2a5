"""Row validation against an interface: see :mod:`dmv.interface.validate`."""

from dmv.interface.validate import RowValidator

__all__ = ["RowValidator"]
