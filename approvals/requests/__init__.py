"""Requests: what was asked, on which frozen device set, who decided, and the state machine."""
