"""Errors are values with a one-line message the CLI and the UI can show as they are."""


class StorageError(Exception):
    """Any failure to read or edit a store. ``str(err)`` is one line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class SessionNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no session {key!r}")
        self.key = key


class ReadOnlyError(StorageError):
    def __init__(self, action: str) -> None:
        super().__init__(f"read-only mode: {action} is off (start without --read-only to edit)")


class SessionChangedError(StorageError):
    """The session changed between the read and the edit; nothing was written."""
