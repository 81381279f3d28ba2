"""Engines: what cliffscope measures inside a model, written once against the adapter interface.

`capture` (attention flow per layer and group), `attention_maps` (query->image maps on the
image grid), `cam` (LLaVA-CAM), and the truncation/sweep engines. Each module imports torch;
nothing here is imported by the domain core or the dashboard.
"""
