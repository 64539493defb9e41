"""Who may request and approve what, how many approvals, which devices are protected."""

from approvals.policy.loader import PolicyError, load_policy
from approvals.policy.protection import Protection
from approvals.policy.service import Decision, Policy

__all__ = ["Decision", "Policy", "PolicyError", "Protection", "load_policy"]
