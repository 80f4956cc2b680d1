"""Delivery: the planner (what to send, when) and the sender (the outbox engine)."""
