"""Operations: health and readiness, Prometheus metrics, alerts to the admins.

No Telegram here (the layer rule): :mod:`bot.telegram.ops` wires this into the bot.
"""
