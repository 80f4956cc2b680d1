"""The one exception hierarchy the edges catch. Inside, code raises a specific subclass;
the CLI, the console and the Telegram handlers turn any :class:`BriefbotError` into one
line for the user, never a traceback."""

from __future__ import annotations


class BriefbotError(Exception):
    """Something the user or operator can fix; the message says what and how."""
