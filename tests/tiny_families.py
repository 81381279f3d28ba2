"""The tiny 2026-family checkpoints (they live in `cliffscope.conformance.families`)."""

from cliffscope.conformance.families import *  # noqa: F403
from cliffscope.conformance.families import FAMILY_BUILDERS  # noqa: F401
