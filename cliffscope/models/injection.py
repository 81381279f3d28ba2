"""Features a family adds into the decoder's residual stream at image positions.

Qwen3-VL's deepstack adds features from several vision-tower layers to the hidden states at
image positions after decoder layers 0 .. n-1 — in the text model's forward, between layers,
not inside one (`visual_pos_masks` and `deepstack_visual_embeds` are keyword arguments of the
text model). When image tokens leave at layer k, the model's own addition after layers >= k
would index rows that no longer exist (an IndexError in transformers), and rows a strategy kept
must still get theirs. So an engine that changes rows from layer k on:

- cuts the model's list to the first k entries (a forward pre-hook on the text model: the
  model adds after layers < k itself, exactly as untouched),
- and adds the rest itself after layers >= k, only at the kept rows whose original position
  is an image position (forward hooks on those layers), with the same arithmetic
  (`hidden[rows] + features`), so a strategy that keeps every image token is bit-identical to
  the untouched model.

`Injections.recording` captures the features during an untouched forward (the shared sweep),
and `add` applies them to a branch's rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from cliffscope.models.base import ModelAdapter


@dataclass
class Injected:
    """One forward's injected features: `mask` (B, S) image positions, `features[j]` (N, D)
    the rows added after layer j, in row-major order of `mask`'s True positions."""

    mask: torch.Tensor
    features: list[torch.Tensor]

    def row_index(self) -> torch.Tensor:
        """(B, S): the feature row of each image position (-1 elsewhere)."""
        flat = self.mask.flatten().long()
        return (flat.cumsum(0) - 1).masked_fill(flat == 0, -1).view(self.mask.shape)


class Injections:
    """Keyword arguments `mask_kwarg` / `features_kwarg` of the text model carry the features."""

    def __init__(
        self, adapter: ModelAdapter, mask_kwarg: str, features_kwarg: str, n_layers: int
    ) -> None:
        self.adapter = adapter
        self.mask_kwarg, self.features_kwarg = mask_kwarg, features_kwarg
        self.n_layers = n_layers

    def _read(self, kwargs: dict[str, Any]) -> Injected | None:
        features = kwargs.get(self.features_kwarg)
        mask = kwargs.get(self.mask_kwarg)
        if features is None or mask is None:
            return None
        return Injected(mask=mask, features=list(features))

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Injected]]:
        """Capture what an (untouched) forward injects; yields a list filled by the forward."""
        seen: list[Injected] = []

        def pre(module: Any, args: tuple, kwargs: dict) -> None:
            found = self._read(kwargs)
            if found is not None:
                seen.append(found)

        handle = self.adapter.text_model().register_forward_pre_hook(pre, with_kwargs=True)
        try:
            yield seen
        finally:
            handle.remove()

    def add(
        self,
        injected: Injected,
        layer: int,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        batch_rows: torch.Tensor,
    ) -> torch.Tensor:
        """`hidden` (N, T, D) after `layer`, plus the features at rows whose original position
        (`positions` (N, T) into batch row `batch_rows` (N,)) is an image position."""
        if layer >= len(injected.features):
            return hidden
        index = injected.row_index().to(hidden.device)
        rows = index[batch_rows.to(hidden.device)[:, None], positions.to(hidden.device)]
        where = rows >= 0
        if not bool(where.any()):
            return hidden
        features = injected.features[layer].to(hidden.device, hidden.dtype)
        out = hidden.clone()
        out[where] = out[where] + features[rows[where]]
        return out

    @contextlib.contextmanager
    def following(self, k: int, kept_rows: Callable[[], torch.Tensor | None]) -> Iterator[None]:
        """Inside a truncation at k: the model injects after layers < k, we after layers >= k
        at the kept image rows (`kept_rows()`: the (B, T) original positions layers >= k hold
        in the current call, or None when they hold every position)."""
        import torch

        if k >= self.n_layers:
            yield
            return
        state: dict[str, Injected] = {}

        def pre(module: Any, args: tuple, kwargs: dict) -> Any:
            found = self._read(kwargs)
            if found is None:
                return None
            state["injected"] = found
            return args, {**kwargs, self.features_kwarg: found.features[:k]}

        def after(layer: int) -> Callable:
            def hook(module: Any, args: tuple, output: Any) -> Any:
                injected = state.get("injected")
                hidden = output[0] if isinstance(output, tuple) else output
                if injected is None or layer >= len(injected.features):
                    return None
                rows = kept_rows()
                batch, length = injected.mask.shape
                if rows is None:
                    if hidden.shape[1] != length:  # a cached step: new text tokens only
                        return None
                    rows = torch.arange(length, device=hidden.device).expand(batch, length)
                batch_rows = torch.arange(batch, device=hidden.device)
                new = self.add(injected, layer, hidden, rows, batch_rows)
                return (new, *output[1:]) if isinstance(output, tuple) else new

            return hook

        layers = self.adapter.decoder_layers()
        handles = [self.adapter.text_model().register_forward_pre_hook(pre, with_kwargs=True)]
        handles += [
            layers[j].register_forward_hook(after(j))
            for j in range(k, min(self.n_layers, len(layers)))
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
