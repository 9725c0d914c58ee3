"""The simulated model provider: a real local server speaking the providers' wire protocols.

    from orchestrator.sim import SimConfig, ModelProfile, Fault, SimServer, load_tape
"""

from orchestrator.sim.config import Fault, ModelProfile, SimConfig, TapeEntry, default_profiles
from orchestrator.sim.server import SimServer
from orchestrator.sim.tape import load_tape

__all__ = [
    "Fault",
    "ModelProfile",
    "SimConfig",
    "SimServer",
    "TapeEntry",
    "default_profiles",
    "load_tape",
]
