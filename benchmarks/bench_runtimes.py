"""A runtime lever, measured: the server's eager copy of a network against the same network in ONNX Runtime and traced
by TorchScript (``torch.jit.trace`` + ``freeze``, deprecated in torch 2.13), per call, interleaved, on this CPU. The
networks: Part B's D 64 UNet at the 300-step page's CFG call (80 rows) and the colour flow model's UNet (Emoji (colour,
flow), --rows images).

    pip install onnxruntime onnx      # not in the requirements: this benchmark decides whether they earn a place
    python benchmarks/bench_runtimes.py [--rows 40] [--threads N] [--repeats 5]

Prints one JSON object: per network, ms per call of each runtime (medians of --repeats rounds of 10 calls), the speed-up
and the largest difference of the outputs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.bundled import load_backend, load_course_model  # noqa: E402
from models.unet import inference_copy  # noqa: E402


class EmojiCall(torch.nn.Module):
    """The colour UNet as one call of tensors (diffusers returns an output object)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, c):
        return self.unet(x, t, class_labels=c).sample


def networks(rows: int) -> dict:
    """name -> (the exact network to export, the server's eager copy, its inputs)."""
    model, _ = load_course_model("flow_class")
    model.eval()
    c = torch.zeros(80, 10)
    c[:40, 3] = 1  # 40 conditioned rows and 40 unconditioned, as CFG calls it
    digits = (torch.randn(80, 1, 28, 28), torch.rand(80, 1), c)
    den = load_backend("Emoji (colour, flow)")
    colour = (torch.randn(rows, 3, 32, 32), torch.rand(rows) * 1000, torch.randint(0, len(den.names), (rows,)))
    return {
        "Part B D 64 UNet, 80 rows": (model, inference_copy(model), digits),
        f"colour flow UNet, {rows} rows": (
            EmojiCall(den.unet),
            EmojiCall(den.for_inference().unet),
            colour,
        ),
    }


def session(exact: torch.nn.Module, inputs: tuple, threads: int):
    import onnxruntime as ort

    buffer = io.BytesIO()
    names = ["x", "t", "c"]
    torch.onnx.export(
        exact,
        inputs,
        buffer,
        input_names=names,
        output_names=["out"],
        dynamic_axes={n: {0: "rows"} for n in [*names, "out"]},
        dynamo=False,
        opset_version=17,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def measure(exact: torch.nn.Module, fast: torch.nn.Module, inputs: tuple, threads: int, repeats: int) -> dict:
    """ms per call of the server's eager copy and of ONNX Runtime (interleaved rounds of 10 calls), and how far apart
    their outputs are."""
    sess = session(exact, inputs, threads)
    feed = {n: v.numpy() for n, v in zip(("x", "t", "c"), inputs)}
    x_fast = (inputs[0].contiguous(memory_format=torch.channels_last), *inputs[1:])

    def eager():
        with torch.no_grad():
            return fast(*x_fast)

    with torch.no_grad(), warnings.catch_warnings():  # torch.jit is deprecated in torch 2.13: measured, not served
        warnings.simplefilter("ignore")
        traced = torch.jit.freeze(torch.jit.trace(fast.eval(), x_fast, check_trace=False))

    def script():
        with torch.no_grad():
            return traced(*x_fast)

    calls = {"eager (server copy)": eager, "onnx runtime": lambda: sess.run(None, feed), "torchscript": script}
    difference = float((torch.from_numpy(sess.run(None, feed)[0]) - eager()).abs().max())
    traced_difference = float((script() - eager()).abs().max())
    times = {k: [] for k in calls}
    for _ in range(repeats):
        for k, call in calls.items():  # interleaved: both see the same machine
            call()
            t0 = time.perf_counter()
            for _ in range(10):
                call()
            times[k].append((time.perf_counter() - t0) / 10)
    ms = {k: round(statistics.median(v) * 1000, 1) for k, v in times.items()}
    return {
        "ms_per_call": ms,
        "speedup": round(ms["eager (server copy)"] / ms["onnx runtime"], 2),
        "max_abs_difference": difference,
        "torchscript_speedup": round(ms["eager (server copy)"] / ms["torchscript"], 2),
        "torchscript_max_abs_difference": traced_difference,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=40, help="images per call of the colour UNet")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    try:
        import onnxruntime
    except ImportError:
        sys.exit("ONNX Runtime is not installed: pip install onnxruntime onnx, then run this again")
    torch.set_num_threads(args.threads)
    report = {
        "machine": f"{os.cpu_count()}-core {platform.machine()} ({platform.processor() or 'cpu'})",
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "threads": args.threads,
    }
    for name, (exact, fast, inputs) in networks(args.rows).items():
        report[name] = measure(exact, fast, inputs, args.threads, args.repeats)
        print(f"{name}: {report[name]['ms_per_call']}", file=sys.stderr, flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
