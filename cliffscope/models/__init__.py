"""Model adapters: where each VLM family keeps its layers, image tokens and image grid.

Import `cliffscope.models.loading.load_adapter` to get one; this package itself stays free of
torch so the registry can be listed cheaply.
"""
