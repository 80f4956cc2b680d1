"""The python-telegram-bot edge: application wiring, handlers, the sending transport."""
