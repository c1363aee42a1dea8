"""A multi-provider gateway for asynchronous translation jobs."""

from gateway.normalize import normalize
from gateway.states import CanonicalStatus, State

__version__ = "0.1.0"
__all__ = ["CanonicalStatus", "State", "__version__", "normalize"]
