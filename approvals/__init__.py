"""Requests, policy, persistence and durable execution: everything between "someone asked" and "MDE did it".

Nothing in this package imports slack_bolt or the Agents SDK; chat surfaces live in ``bot/``.
"""
