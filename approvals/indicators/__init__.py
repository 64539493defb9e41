"""Tenant-wide threat indicators: ``block`` / ``unblock`` requests and the ``indicators`` list."""
