"""Train the colour backends: class-conditional DDPM or flow matching on emoji renderings, the exact recipes of their cards.

The bundled colour networks are flow networks: parta_emoji_flow (the Fall 2026 backend's) and parta_emoji (the Fall 2024
backend's, read as DDPM: models/emoji_backend.py); DDPM networks are trained here for comparison (docs/performance.md).

    python tools/train_emoji.py [--threads 2] [--steps 5000]      # runs/emoji/train (DDPM); resumes where it stopped
    python tools/train_emoji.py --export --out ddpm.safetensors   # its EMA weights (a DDPM network is not bundled)
    python tools/train_emoji.py --objective flow --steps 4000     # runs/emoji/train_flow
    python tools/train_emoji.py --objective flow --export         # -> models/weights/parta_emoji_flow.safetensors
    python tools/train_emoji.py --objective flow --arch course_every --teacher TEACHER --run runs/emoji/ce
    python tools/train_emoji.py --objective flow --export --run runs/emoji/ce --out models/weights/parta_emoji.safetensors
                                                                  # the Fall 2024 backend's network (its card's runs)
    python tools/train_emoji.py --objective flow --arch fast --init models/weights/parta_emoji_flow.safetensors \
        --lr 3e-4 --warmup 100 --steps 2500 --run runs/emoji/more # more steps from shipped weights (fresh optimizer)
    python tools/train_emoji.py --objective flow --arch fast --teacher models/weights/parta_emoji_flow.safetensors
                                                                  # distilled: the teacher's output is the target

DDPM as the other Part A backends (Ho et al. 2020, Algorithm 1): T = 1000, DeepFloyd IF's squaredcos_cap_v2 schedule,
eps prediction, images in [-1, 1], the null class (the last embedding) in place of the name with p 0.1 for CFG.
--prediction v (DDPM): the network learns v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022), of the order of
the image at every t, where the clean image an eps estimate implies magnifies its error by 1 / sqrt(abar) near the noise
end; the backend turns v back into the noise (models/emoji_backend.py).
Flow matching (Lipman et al. 2023, the course's Fall 2026 convention): x_t = (1 - t) eps + t x1 with t ~ U[0, 1],
t = 0 noise and t = 1 the image, the network fed t * T as its timestep and trained on the velocity x1 - eps.
AdamW, linear warm-up then cosine decay, an exponential moving average of the weights (what ships).
Data: tools/emoji_data.py, --per-name augmentations of every name at 32 px, seed 0 (the judge's held-out set is seed 1).
--teacher (a file --export wrote, the same names): the target is that network's output at the same noisy image, time
and class (its estimate of the velocity or the noise, the mean over the images that image could have come from)
instead of the one image's, a smaller network learning a larger one's function.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from models.emoji_unet import ARCHS, SIZE, build, load_emoji_file, save_emoji_file, unet_config  # noqa: E402
from models.schedules import make_alphas_cumprod  # noqa: E402
from tools.emoji_data import render  # noqa: E402

RUN = ROOT / "runs" / "emoji" / "train"
RECIPE = dict(
    size=SIZE,
    per_name=1000,
    data_seed=0,
    batch_size=64,
    lr=1e-3,
    warmup=200,
    steps=5000,
    p_uncond=0.1,
    ema=0.999,
    T=1000,
    schedule="squaredcos_cap_v2",
    seed=0,
    objective="ddpm",
)
RUNS = {"ddpm": RUN, "flow": ROOT / "runs" / "emoji" / "train_flow"}
EXPORTS = {"flow": "parta_emoji_flow"}  # --export's default file (a DDPM network is not bundled: --out names its file)


def dataset(size: int, per_name: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The renderings (N, 3, size, size) uint8, labels, names; cached in runs/emoji/."""
    cache = ROOT / "runs" / "emoji" / f"emoji_{size}_{per_name}_{seed}.npz"
    if not cache.exists():
        images, labels, names = render(size, per_name, seed)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=images, labels=labels, names=np.array(names))
    data = np.load(cache)
    return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]), [str(n) for n in data["names"]]


def lr_at(step: int, r: dict) -> float:
    if step < r["warmup"]:
        return r["lr"] * (step + 1) / r["warmup"]
    progress = (step - r["warmup"]) / max(1, r["steps"] - r["warmup"])
    return r["lr"] * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(r: dict, run: Path) -> None:
    images, labels, names = dataset(r["size"], r["per_name"], r["data_seed"])
    config = unet_config(len(names), r["size"], r.get("arch", "attn"))
    torch.manual_seed(r["seed"])
    model, ema = build(config), build(config)
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=0.0)
    step, elapsed = 0, 0.0
    if (run / "state.json").exists():  # resume
        state = json.loads((run / "state.json").read_text())
        step, elapsed = state["step"], state["elapsed_s"]
        model.load_state_dict(load_file(run / "model.safetensors"))
        ema.load_state_dict(load_file(run / "ema.safetensors"))
        opt.load_state_dict(torch.load(run / "optimizer.pt", weights_only=True))
        print(f"resumed at step {step}", flush=True)
    else:
        if r.get("init"):  # go on from weights that shipped: model and EMA both start there, the optimizer fresh
            shipped, _ = load_emoji_file(r["init"])
            missing, unexpected = model.load_state_dict(shipped.state_dict(), strict=False)
            if unexpected or any(not k.startswith("head.") for k in missing):  # a new head (zero) may start here
                raise SystemExit(f"--init {r['init']} holds another network than --arch {r.get('arch', 'attn')}")
        ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    teacher = load_emoji_file(ROOT / r["teacher"])[0].requires_grad_(False) if r.get("teacher") else None
    abar = make_alphas_cumprod(r["schedule"], r["T"])
    g = torch.Generator().manual_seed(r["seed"] + step)
    null = len(names)
    run.mkdir(parents=True, exist_ok=True)
    log = open(run / "log.jsonl", "a")
    t0, losses = time.time(), []
    while step < r["steps"]:
        idx = torch.randint(0, len(images), (r["batch_size"],), generator=g)
        x0 = images[idx].float() / 127.5 - 1
        c = torch.where(torch.rand(len(idx), generator=g) < r["p_uncond"], null, labels[idx])
        if r.get("objective", "ddpm") == "flow":  # x1 is the image here (x0 of the DDPM line)
            t = torch.rand(len(idx), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            x_t, target = (1 - t.view(-1, 1, 1, 1)) * eps + t.view(-1, 1, 1, 1) * x0, x0 - eps
            t = t * r["T"]
        else:
            t = torch.randint(0, r["T"], (len(idx),), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            a = abar[t].view(-1, 1, 1, 1)
            x_t, target = a.sqrt() * x0 + (1 - a).sqrt() * eps, eps
        if teacher is not None:
            with torch.no_grad():
                target = teacher(x_t, t, class_labels=c).sample
        if r.get("prediction", "epsilon") == "v":  # DDPM on v, of the noise and the clean image it implies (a teacher's
            if teacher is not None:  # clipped, as the sampler clips it)
                x0 = ((x_t - (1 - a).sqrt() * target) / a.sqrt()).clamp(-1, 1)
                target = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
            target = a.sqrt() * target - (1 - a).sqrt() * x0
        loss = F.mse_loss(model(x_t, t, class_labels=c).sample, target)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, r)
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay = min(r["ema"], (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
            for be, bm in zip(ema.buffers(), model.buffers()):  # BatchNorm's statistics (the course UNet's)
                be.copy_(bm)
        step += 1
        losses.append(loss.item())
        if step % 50 == 0 or step == r["steps"]:
            now = elapsed + time.time() - t0
            log.write(
                json.dumps(dict(step=step, loss=float(np.mean(losses)), lr=lr_at(step - 1, r), elapsed_s=round(now, 1)))
                + "\n"
            )
            log.flush()
            print(f"step {step} loss {np.mean(losses):.4f} {now:.0f} s", flush=True)
            losses = []
        if step % 250 == 0 or step == r["steps"]:
            save_file(model.state_dict(), run / "model.safetensors")
            save_file(ema.state_dict(), run / "ema.safetensors")
            torch.save(opt.state_dict(), run / "optimizer.pt")
            (run / "state.json").write_text(
                json.dumps(
                    dict(
                        step=step,
                        elapsed_s=elapsed + time.time() - t0,
                        recipe=r,
                        names=names,
                        threads=torch.get_num_threads(),
                    )
                )
            )


def export(run: Path, out: Path) -> None:
    state = json.loads((run / "state.json").read_text())
    r, names = state["recipe"], state["names"]
    config = unet_config(len(names), r["size"], r.get("arch", "attn"))
    ema = build(config)
    ema.load_state_dict(load_file(run / "ema.safetensors"))
    train_meta = dict(r, steps_done=state["step"], elapsed_s=round(state["elapsed_s"]), threads=state["threads"])
    if r.get("init"):  # what the weights it started from had been through, for the card
        train_meta["init_train"] = load_emoji_file(ROOT / r["init"])[1].get("train")
        train_meta["init"] = Path(r["init"]).name  # the file's name: where it lay on one machine says nothing
    if r.get("teacher"):  # and what the network it learnt from had been through
        train_meta["teacher_train"] = load_emoji_file(ROOT / r["teacher"])[1].get("train")
    save_emoji_file(out, ema, config, {"names": names, "train": train_meta})
    print(f"{out}: step {state['step']}, {out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=RECIPE["steps"])
    ap.add_argument(
        "--objective", choices=("ddpm", "flow"), default="ddpm", help="DDPM (Fall 2024) or flow matching (Fall 2026)"
    )
    ap.add_argument("--run", type=Path, help="run folder (default: runs/emoji/train, or train_flow for flow; + _fast)")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="attn", help="the network (models/emoji_unet.ARCHS)")
    ap.add_argument("--out", type=Path, help="--export writes here instead of the bundled weights")
    ap.add_argument("--init", help="start from these weights (a file --export wrote) instead of random ones")
    ap.add_argument("--teacher", help="distil: the target is this network's output (a file --export wrote)")
    ap.add_argument(
        "--prediction",
        choices=("epsilon", "v"),
        default="epsilon",
        help="DDPM: what the network predicts, the noise or v = sqrt(abar) eps - sqrt(1 - abar) x0 (the backend turns v"
        " into the noise)",
    )
    ap.add_argument("--lr", type=float, default=RECIPE["lr"])
    ap.add_argument("--warmup", type=int, default=RECIPE["warmup"])
    ap.add_argument(
        "--export",
        action="store_true",
        help="write the EMA weights to --out (flow: by default models/weights/parta_emoji_flow.safetensors)",
    )
    args = ap.parse_args()
    if args.prediction == "v" and args.objective == "flow":
        ap.error("--prediction v is DDPM's: a flow network predicts the velocity")
    run = args.run or RUNS[args.objective].with_name(
        RUNS[args.objective].name + ("" if args.arch == "attn" else f"_{args.arch}")
    )
    if args.export and args.out is None and args.objective not in EXPORTS:
        ap.error("a DDPM network is not bundled: --export needs --out FILE (parta_emoji.safetensors is a flow network)")
    if args.export:
        export(run, args.out or ROOT / "models" / "weights" / f"{EXPORTS[args.objective]}.safetensors")
    else:
        torch.set_num_threads(args.threads)
        init = {"init": args.init} if args.init else {}
        init |= {"teacher": args.teacher} if args.teacher else {}
        recipe = dict(
            RECIPE, steps=args.steps, lr=args.lr, warmup=args.warmup, objective=args.objective, arch=args.arch
        )
        recipe |= {"prediction": args.prediction} if args.prediction != "epsilon" else {}
        train(recipe | init, run)
