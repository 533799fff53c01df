"""The one error type the user sees: a problem with one input or setting."""


class ConvertError(Exception):
    """Something the user can fix, reported as `error: WHERE: REASON` without a traceback."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class ConfigError(ConvertError):
    """A problem in a config file; nothing runs until it is fixed."""
