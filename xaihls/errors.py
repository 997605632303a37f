"""The one exception type for user mistakes."""


class XaiHlsError(Exception):
    """A mistake in what the user gave (model, file, option, board).

    The message is one line that names the thing at fault and what is supported;
    the CLI prints it as is and exits non-zero.
    """


class XaiHlsWarning(UserWarning):
    """Something the user should know that does not stop the tool (one line; the CLI prints it)."""
