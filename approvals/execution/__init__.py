"""Durable execution: stored jobs, a worker pool that claims them, submission and polling."""
