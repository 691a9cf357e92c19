"""The account a connector reads: one configured organisation account on one platform."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    platform: str
    handle: str
    role: str
    instance: str | None = None  # Mastodon server

    @property
    def author_handle(self) -> str:
        """The handle as it appears as a post's author: a Reddit user account is configured as
        `u/name` (or `/u/name`, `name`) and authors posts as `name`."""
        if self.platform == "reddit":
            bare = self.handle.lstrip("/")
            return bare[2:] if bare.lower().startswith("u/") else bare
        return self.handle

    @property
    def key(self) -> str:
        return self.author_handle.lower()
