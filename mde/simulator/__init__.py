"""A faithful local MDE API: documented paths, fields, errors, limits and action life cycle."""

from mde.simulator.config import SimulatorConfig
from mde.simulator.server import LoggedRequest, Simulator
from mde.simulator.tenant import Tenant

__all__ = ["LoggedRequest", "Simulator", "SimulatorConfig", "Tenant"]
