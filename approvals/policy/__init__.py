"""Who may request and approve what, how many approvals, which devices are protected."""

from approvals.errors import PolicyError, Verdict
from approvals.policy.loader import load_policy
from approvals.policy.protection import Protection
from approvals.policy.service import Policy

__all__ = ["Policy", "PolicyError", "Protection", "Verdict", "load_policy"]
