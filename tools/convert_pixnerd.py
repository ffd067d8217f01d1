"""Convert PixNerd's Lightning checkpoint to a safetensors file of its EMA network weights, once.

    python -m tools.convert_pixnerd model.ckpt model.safetensors [--dtype bfloat16] [--allow pathlib.PosixPath ...]

The checkpoint is read with torch.load(weights_only=True): tensors and plain containers, no code from the file.
Where it holds other Python objects, the lab names them; ``--allow module.Name`` accepts each one you trust (it is
rebuilt as data, its code is not run beyond that class's own). The output holds only the "ema_denoiser." weights
with the prefix taken off (4.7 GB in float32, half in bfloat16); set DIFFUSION_LAB_PIXNERD_MODEL to it.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from safetensors.torch import save_file

from models.pixnerd.loading import denoiser_weights, read_checkpoint
from models.pixnerd.settings import DTYPES, TESTED_COMMIT


def named_global(name: str):
    """The object a dotted name (module.Name) names."""
    module, _, attribute = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as e:
        raise SystemExit(f"--allow {name}: there is no such name to import ({e})") from None


def convert(checkpoint: Path, out: Path, dtype: str | None = None, allow: tuple[str, ...] = ()) -> int:
    """Write the EMA weights of checkpoint to out (safetensors); returns how many tensors it wrote."""
    weights = denoiser_weights(read_checkpoint(checkpoint, [named_global(n) for n in allow]))
    if not weights:
        raise SystemExit(f"{checkpoint} holds no tensors of a PixNerd network")
    if dtype is not None:
        weights = {k: v.to(DTYPES[dtype]) for k, v in weights.items()}
    weights = {k: v.contiguous() for k, v in weights.items()}
    save_file(
        weights, str(out), metadata={"source": checkpoint.name, "keys": "ema_denoiser", "pixnerd_commit": TESTED_COMMIT}
    )
    return len(weights)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="PixNerd's model.ckpt (a Lightning checkpoint)")
    parser.add_argument("out", type=Path, help="the .safetensors to write")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="cast the weights (default: as they are stored)")
    parser.add_argument(
        "--allow", action="append", default=[], metavar="module.Name", help="a global the checkpoint may hold"
    )
    args = parser.parse_args(argv)
    count = convert(args.checkpoint, args.out, args.dtype, tuple(args.allow))
    print(f"wrote {count} tensors to {args.out}")


if __name__ == "__main__":
    main()
