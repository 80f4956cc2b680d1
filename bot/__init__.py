"""briefbot: a Telegram bot for a Chinese daily tech-news brief and its searchable archive."""

__version__ = "0.1.0"
