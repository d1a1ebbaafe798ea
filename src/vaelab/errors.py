"""The one exception type a user can cause.

DESIGN.md §2: errors a user can cause (bad path, bad image, bad config value, wrong model
for a file) raise ``VaelabError`` with a message that says what was wrong and what to do.
The CLI prints it on one line and exits non-zero, without a traceback.
"""

from __future__ import annotations

import os


class VaelabError(Exception):
    """A problem with the user's input, files or settings (never a bug in vaelab).

    The message is a single line; ``path``, when given, is prefixed so the user knows which
    file is at fault. ``exit_status`` is what the CLI exits with (2: bad input; a subclass for a
    job that ran but failed, such as an untrained demo, uses 1).
    """

    exit_status = 2

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        message = " ".join(str(message).split())  # one line, always
        if path is not None:
            message = f"{os.fspath(path)}: {message}"
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)
