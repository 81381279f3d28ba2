"""cliffscope: information flow in vision-language models.

Importing this package is cheap on purpose: it pulls in neither torch, transformers nor
textual, so the CLI and the dashboard start fast on a busy GPU server.
"""

__version__ = "0.1.0"
