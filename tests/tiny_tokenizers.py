"""The tiny word-level tokenizers (they live in `cliffscope.conformance.tokenizers`)."""

from cliffscope.conformance.tokenizers import *  # noqa: F403
