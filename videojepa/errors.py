"""Exceptions that mean "the user gave us something we cannot use" (bad config, bad path).

The CLI turns them into a one-line message and exit code 2.
"""


class UserError(Exception):
    """An input problem the user can fix; the message must say what and how."""


class ConfigError(UserError):
    """A configuration key is unknown, mistyped or has an impossible value."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)
