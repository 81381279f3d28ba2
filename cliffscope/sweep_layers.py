"""Truncation layers as a user writes them, checked before any model is loaded.

The sweep's `layers` parameter (`kinds.sweep.SweepParams`, so the CLI's `--layers` and the
launch form) parses through here; the token strategy says where k may start
(`TokenStrategy.check_layer`), and the worker checks the list against the model's depth
(`worker.sweep_job.resolve_layers`), which only it knows.
"""

from __future__ import annotations

from cliffscope.errors import ValidationError

LAYERS_HELP = (
    "Truncation layers k: 'all' (0..L, the default), a list '0,4,8', or a range 'a:b' / "
    "'a:b:step' whose END IS INCLUDED ('0:32:2' = 0,2,...,32). k = L is the untruncated model."
)


def parse_layers(text: str | None) -> str | list[int]:
    """'all' | '0,4,8' | 'a:b[:step]' (end inclusive) -> "all" or a sorted list of ints."""
    if text is None or text.strip().lower() in ("", "all"):
        return "all"
    text = text.strip()
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, end, step = (*parts, 1) if len(parts) == 2 else parts
            if step <= 0 or start > end:
                raise ValueError
            layers = list(range(start, end + 1, step))
        else:
            layers = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValidationError(
            f"cannot read --layers {text!r}", hint=LAYERS_HELP.replace("'", "")
        ) from None
    if not layers or min(layers) < 0:
        raise ValidationError(f"--layers {text!r} must name layers >= 0", hint=LAYERS_HELP)
    return sorted(set(layers))
