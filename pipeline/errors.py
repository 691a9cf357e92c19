"""Errors the command line explains to the user as they are."""


class StoreError(RuntimeError):
    """A store problem explained for the user (locked, unreadable, not a database, out of date)."""
