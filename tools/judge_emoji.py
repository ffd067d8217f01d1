"""The colour backends' judge and cards: judged, not eyeballed.

    python tools/judge_emoji.py judge     # classifier_emoji: trained on the training renderings, scored on held-out ones
    python tools/judge_emoji.py card      # parta_emoji.md: judged accuracy of CFG samples of every name, FID, and how
                                          # often the default anagram and hybrid read as their prompts (20 seeds each)
    python tools/judge_emoji.py sweep --scales 2,3,4,5,7   # judged accuracy at each γ (16 samples per name)
    python tools/judge_emoji.py --flow card / sweep        # the same for the Fall 2026 flow model (CFG as w)
    python tools/judge_emoji.py grain [FILE ...]           # what the judge misses: speckle of flow samples (w 2)

The judge is models/classifier.py on 3 x 32 x 32: trained on the renderings the model trained on (tools/emoji_data.py,
1000 per name, seed 0), scored on held-out augmentations (seed 1). FID is computed in its 128-d features against the
held-out renderings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataclasses import dataclass  # noqa: E402

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import lab  # noqa: E402
import lab.fall2026 as fall2026  # noqa: E402
import lab.flow as flow  # noqa: E402
from lab.course import CFG_SCALE  # noqa: E402
from lab.filters import gaussian_blur, max_kernel_size  # noqa: E402
from lab.images import grid, save_png  # noqa: E402
from lab.metrics import accuracy, frechet_distance, predict  # noqa: E402
from models.bundled import ALL_BACKENDS, WEIGHTS, emoji_denoiser, load_backend, load_classifier  # noqa: E402
from models.classifier import train_classifier  # noqa: E402
from models.emoji_backend import FLOW_ILLUSIONS, ILLUSIONS  # noqa: E402
from tools.train_emoji import RECIPE, dataset  # noqa: E402

HELDOUT = dict(per_name=50, seed=1)  # the judge's held-out renderings (never trained on)
BACKEND = "Emoji (colour)"


@dataclass(frozen=True)
class Edition:
    """How a backend's edition makes the pages' pictures: its sampler, its anagram view, its hybrid blur, its CFG."""

    name: str  # "2024" (DDPM: CFG gamma) or "2026" (flow: CFG w)
    view: str  # the anagram page's view
    scale: float  # the illusion pages' CFG (gamma 7; w 7)

    def sample(self, den, n, prompt, scale, generator, coarse=False, steps=False):
        if self.name == "2026":
            return way(flow.sample, steps)(
                den, n, prompt, scale, step_size=1 / 12 if coarse else fall2026.STEP_SIZE, generator=generator
            )
        return way(lab.sample, steps)(
            den, n, prompt, scale, timesteps=lab.strided_timesteps(den.T, 90 if coarse else 30), generator=generator
        )

    def anagram(self, den, prompts, n, scale, generator, coarse=False, steps=False):
        if self.name == "2026":
            return way(flow.anagram_images, steps)(
                den, prompts, ("identity", self.view), n, scale, 1 / 12 if coarse else fall2026.STEP_SIZE, generator
            )
        return way(lab.visual_anagrams, steps)(
            den,
            prompts,
            ("identity", self.view),
            n,
            scale,
            lab.strided_timesteps(den.T, 90 if coarse else 30),
            generator,
        )

    def hybrid(self, den, prompts, n, scale, generator, sigma=None, coarse=False, steps=False):
        kernel, default = self.blur(den)
        if self.name == "2026":
            return way(flow.hybrid_images, steps)(
                den, prompts, kernel, (sigma or default,), n, scale, 1 / 12 if coarse else fall2026.STEP_SIZE, generator
            )
        return way(lab.make_hybrids, steps)(
            den,
            prompts,
            kernel,
            (sigma or default,),
            n,
            scale,
            lab.strided_timesteps(den.T, 90 if coarse else 30),
            generator,
        )

    def blur(self, den) -> tuple[int, float]:
        """The hybrid page's kernel and sigma on this backend."""
        if self.name == "2026":
            from serving.defaults import flow_hybrid_blur

            return flow_hybrid_blur(den)
        return hybrid_kernel(den), 2.0


def way(course_function, steps: bool):
    """The course function, or with steps its loop unrun (its ``steps``: tools/search_illusions.py runs loops together)."""
    return course_function.steps if steps else course_function


EDITIONS = {"2024": Edition("2024", "flip", CFG_SCALE), "2026": Edition("2026", "rotate_180", fall2026.CFG_W)}


def save_samples(den, x: torch.Tensor, per_name: int, stem: str) -> None:
    """The card's figure: 4 samples of every name (x: per_name of each, names in order), 16 a row."""
    four = x.view(len(den.names), per_name, *x.shape[1:])[:, :4].reshape(-1, *x.shape[1:])
    save_png(grid(four, nrow=16, low=-1, high=1), WEIGHTS / f"{stem}.png")


def edition_of(den) -> Edition:
    return EDITIONS["2026" if den.prediction == "velocity" else "2024"]


def heldout() -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out renderings in [0, 1] (N, 3, 32, 32) and their labels."""
    images, labels, _ = dataset(RECIPE["size"], HELDOUT["per_name"], HELDOUT["seed"])
    return images.float() / 255, labels


JUDGE = dict(per_name=1000, epochs=4)


def jitter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Colour jitter per image (saturation x0.5-2, contrast x0.7-1.3, brightness +-0.1) and a little noise: a judge
    trained on clean renderings alone read CFG's saturated colours as other names (50 % on samples a person reads)."""
    B = len(x)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(B, 1, 1, 1, generator=g)  # noqa: E731
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * u(0.5, 2.0)
    x = x.mean((1, 2, 3), keepdim=True) + (x - x.mean((1, 2, 3), keepdim=True)) * u(0.7, 1.3) + u(-0.1, 0.1)
    return (x + u(0.0, 0.05) * torch.randn(x.shape, generator=g)).clamp(0, 1)


def export_judge(per_name: int = JUDGE["per_name"], epochs: int = JUDGE["epochs"]) -> None:
    images, labels, names = dataset(RECIPE["size"], RECIPE["per_name"], RECIPE["data_seed"])
    keep = torch.cat([torch.nonzero(labels == k).flatten()[:per_name] for k in range(len(names))])
    images, labels = images[keep], labels[keep]
    t0 = time.time()
    model = train_classifier(images.float() / 255, labels, epochs=epochs, num_classes=len(names), augment=jitter)
    x, y = heldout()
    acc = accuracy(predict(model, x)[0], y)
    meta = {
        "classifier": json.dumps(dict(in_channels=3, num_classes=len(names), size=RECIPE["size"])),
        "names": json.dumps(names),
    }
    save_file(
        {k: v.half().contiguous() for k, v in model.state_dict().items()},
        WEIGHTS / "classifier_emoji.safetensors",
        metadata=meta,
    )
    data = f"{per_name} per name of seed {RECIPE['data_seed']} (of the {RECIPE['per_name']} parta_emoji trained on)"
    augment = "colour jitter (saturation x0.5-2, contrast x0.7-1.3, brightness +-0.1) and noise (std up to 0.05)"
    (WEIGHTS / "classifier_emoji.md").write_text(f"""# classifier_emoji: the independent judge of the emoji backend

- Model: models/classifier.py (conv32-pool-conv64-pool-fc128-fc{len(names)}) on 3 x 32 x 32 in [0, 1], fp16 safetensors.
- Data: tools/emoji_data.py renderings, {data}; never generated images.
- Recipe: `python tools/judge_emoji.py judge`: Adam 1e-3, batch 128, {epochs} epochs, random shifts of up to 2 pixels,
  {augment} per image, seed 0; {time.time() - t0:.0f} s on a 2-core CPU.
- Held-out accuracy: **{acc:.2%}** on {len(y)} renderings of seed {HELDOUT["seed"]} ({HELDOUT["per_name"]} per name:
  other scales, places, backgrounds, skin tones).
""")
    print(f"classifier_emoji: held-out accuracy {acc:.4f}")


def hybrid_kernel(den) -> int:
    """The hybrid page's blur kernel on this backend: 33, or the largest reflect padding allows."""
    return min(33, max_kernel_size(*den.image_shape[1:]))


def weakest(den, labels: torch.Tensor, y: torch.Tensor, n: int = 5) -> str:
    """The n names judged right least often ("skull 0%, ghost 12%, ..."): labels read, y wanted."""
    per = {den.names[k]: accuracy(labels[y == k], y[y == k]) for k in range(len(den.names))}
    return ", ".join(f"{name} {a:.0%}" for name, a in sorted(per.items(), key=lambda kv: kv[1])[:n])


@torch.no_grad()
def judged(images: torch.Tensor, judge) -> torch.Tensor:
    """The judge's reading (name indices) of images (N, 3, H, W) in [-1, 1]."""
    return predict(judge, (images.clamp(-1, 1) + 1) / 2)[0]


def cfg_samples(
    den, per_name: int, scale: float, seed: int = 0, names: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """per_name CFG samples of each name (or of names), as the pages sample (strided timesteps; flow: h = 0.02):
    images, labels. scale: gamma (DDPM) or w (flow)."""
    names = range(len(den.names)) if names is None else names
    out, labels = [], []
    for k in names:
        out.append(edition_of(den).sample(den, per_name, den.names[k], scale, generator=seed * 1000 + k))
        labels += [k] * per_name
    return torch.cat(out), torch.tensor(labels)


def class_of(den, prompt: str) -> int:
    """The class a prompt names: a name index (emoji), or the one-hot row's class (digits)."""
    c = den.encode([prompt])
    return int(c.argmax()) if c.ndim == 2 else int(c.item())


def anagram_rate(
    den, judge, prompts, view: str | None = None, seeds=range(20), scale: float | None = None
) -> tuple[float, float, float]:
    """Over seeds, as the page makes them (one image per seed): how often the judge reads prompt 0 as is, prompt 1
    through the view (the edition's: flip, rotate_180), and both."""
    e = edition_of(den)
    v = lab.get_view(view or e.view)
    k0, k1 = (class_of(den, p) for p in prompts)
    a = b = both = 0
    for seed in seeds:
        x = (
            e.anagram(den, prompts, 1, e.scale if scale is None else scale, seed)
            if view in (None, e.view)
            else lab.visual_anagrams(den, prompts, ("identity", view), 1, scale or e.scale, generator=seed)
        )
        r0, r1 = judged(x, judge).item() == k0, judged(v.view(x), judge).item() == k1
        a, b, both = a + r0, b + r1, both + (r0 and r1)
    n = len(seeds)
    return a / n, b / n, both / n


def hybrid_rate(
    den,
    judge,
    prompts,
    sigma: float | None = None,
    seeds=range(20),
    look_sigma: float | None = None,
    scale: float | None = None,
) -> tuple[float, float, float]:
    """Over seeds: how often the judge reads the far prompt in the hybrid's low-pass (blurred with look_sigma, by
    default the hybrid's sigma: the edition's default), the near prompt in the hybrid as it is, and both."""
    e = edition_of(den)
    k, default = e.blur(den)
    sigma = sigma or default
    far, near = (class_of(den, p) for p in prompts)
    a = b = both = 0
    for seed in seeds:
        x = e.hybrid(den, prompts, 1, e.scale if scale is None else scale, seed, sigma)
        r0 = judged(gaussian_blur(x, k, look_sigma or sigma), judge).item() == far
        r1 = judged(x, judge).item() == near
        a, b, both = a + r0, b + r1, both + (r0 and r1)
    n = len(seeds)
    return a / n, b / n, both / n


FLOW_BACKEND = "Emoji (colour, flow)"


def grain(files: list[str], per_name: int = 2, scale: float = 2.0, names=None) -> dict[str, float]:
    """What the judge does not see: the mean |x - its 3 x 3 box blur| of per_name samples of every name (or of names,
    indices) at w scale, for colour flow weights files, and of the held-out renderings (speckle in flat colour raises
    it)."""
    import torch.nn.functional as F

    from models.emoji_unet import load_emoji_file

    def measure(x):  # x in [0, 1]
        return float((x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)).abs().mean())

    out = {"renderings": measure(heldout()[0][::10].float())}
    for path in files:
        den = emoji_denoiser(*load_emoji_file(path))
        out[path] = measure((cfg_samples(den, per_name, scale, names=names)[0].clamp(-1, 1) + 1) / 2)
        print(f"{path}: {out[path]:.4f} (renderings {out['renderings']:.4f})", flush=True)
    return out


def sweep(scales, per_name: int = 16, seed: int = 100, backend: str = BACKEND) -> list[tuple[float, float]]:
    """Judged accuracy of per_name CFG samples of every name at each scale (seeds other than the card's): which γ (w
    for the flow model) the pages should open on for this backend."""
    den, judge = load_backend(backend), load_classifier("emoji")
    out = []
    for scale in scales:
        t0 = time.time()
        x, y = cfg_samples(den, per_name, scale, seed=seed)
        labels = judged(x, judge)
        worst = weakest(den, labels, y)
        out.append((scale, accuracy(labels, y)))
        print(
            f"CFG {scale:g}: {out[-1][1]:.2%} of {len(y)} judged right ({per_name} per name, seed {seed}); weakest: {worst}; "
            f"{time.time() - t0:.0f} s",
            flush=True,
        )
    return out


def image_gflop(unet) -> float:
    """GFLOP of one image's call of a colour UNet (torch's FLOP counter, a batch of 4)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        unet(torch.zeros(4, 3, 32, 32), torch.full((4,), 500.0), class_labels=torch.zeros(4, dtype=torch.long))
    return counter.get_total_flops() / 4 / 1e9


def network(den) -> str:
    """The Model line's network, from the shipped file's config: its widths, its attention, its parameters, its cost."""
    c = den.unet.config
    cost = (
        f"{sum(p.numel() for p in den.unet.parameters()):,} parameters, {image_gflop(den.unet):.2f} GFLOP an image, "
        "fp16 safetensors"
    )
    if getattr(c, "course_unet", None):  # CourseNameUNet
        s, course = c.sample_size, c.course_unet
        return (
            f"the course's UNet (models/unet.py `CourseUNet` in models/emoji_unet.py `CourseNameUNet`: D {course['D']} "
            f"at {s}-{s // 2}-{s // 4} px, the {s // 4} x {s // 4} bottleneck pooled to 1 x 1, BatchNorm (folded into "
            f"the convolutions at serving), {len(den.names)} names one-hot (the null name: zeros), t as "
            f"{course['time_features']} sinusoidal features"
            f"{', both also at the first and last levels' if course.get('every_level') else ''}), {cost}"
        )
    attention = "self-attention at 8 px" if any("Attn" in b for b in c.down_block_types) else "no attention"
    f = getattr(den.unet, "factor", 1)  # SpaceToDepthUNet: the UNet runs on f x f pixel blocks
    sizes = "-".join(str(c.sample_size // f >> k) for k in range(len(c.block_out_channels)))
    blocks = (
        f" on {f} x {f} pixel blocks ({3 * f * f} channels; pixel_unshuffle in, pixel_shuffle out)" if f > 1 else ""
    )
    return (
        f"diffusers `UNet2DModel` (models/emoji_unet.py: {'-'.join(map(str, c.block_out_channels))} channels at {sizes} "
        f"px{blocks}, one ResNet layer per block, {attention}, {len(den.names)} name embeddings + 1 null), {cost}"
    )


def distilled(r: dict, flag: str, card: str, teacher_card: str | None = None) -> list[str]:
    """How distilled weights were made, from export's metadata (the run; init_train, the run it started from, and that
    one's, back to random weights; teacher_train): the teacher, then the commands, run by run. teacher_card: the card
    that described the teacher (by default card itself, before)."""
    teacher, chain = r.get("teacher_train") or {}, [r]
    while chain[0].get("init_train"):
        chain.insert(0, chain[0]["init_train"])
    minutes = lambda x: round(x.get("elapsed_s", 0) / 60)  # noqa: E731
    teacher_min = minutes(teacher) + minutes(teacher.get("init_train") or {})
    runs = [
        f"  1. the teacher, the network with self-attention {teacher_card or 'this card'} described before (`git log -p "
        f"models/weights/{teacher_card or card}`): "
        f"{teacher.get('steps_done', '?')} steps of batch {teacher.get('batch_size', '?')} from the data"
        + (f" after {teacher['init_train']['steps_done']} more" if teacher.get("init_train") else "")
        + f", {teacher_min} min;",
    ]
    for k, run in enumerate(chain, start=2):
        arch = f"--arch {run['arch']} " if run.get("arch", "attn") != "attn" else ""
        init = f"--init run{k - 1}.safetensors " if k > 2 else ""
        taught = "--teacher teacher.safetensors " if run.get("teacher") else ""
        taught += "--prediction v " if run.get("prediction") == "v" else ""
        runs.append(
            f"  {k}. {'from random weights' if k == 2 else f'from run {k - 1}'}"
            f"{' (a new head at zero)' if k > 2 and run.get('arch') != chain[k - 3].get('arch') else ''}: `python "
            f"tools/train_emoji.py {flag}{arch}{init}{taught}--lr {run['lr']:g} --warmup {run['warmup']} --steps "
            f"{run['steps']} --run runs/emoji/run{k}`, then `... --export --run runs/emoji/run{k} --out run{k}.safetensors`: "
            f"{run['steps_done']} steps of batch {run['batch_size']}"
            f"{' (the run stopped after that checkpoint, which was exported)' if run['steps_done'] < run['steps'] else ''}, {minutes(run)} min on "
            f"{run['threads']} threads;"
        )
    return [
        f"- Trained in {len(runs)} runs (`{flag.strip()}` below), {teacher_min + sum(map(minutes, chain))} min in all on 2-core "
        f"x86_64 CPUs (AMD EPYC; torch {torch.__version__}, fp32, no GPU was lent); AdamW, linear warm-up then cosine "
        f"decay, EMA {r['ema']} of the weights (what ships; the last run's is this file). With --teacher a step's target "
        "is the teacher's output at the same noisy image, time and name, not the data's:",
        *runs,
        "- Why distilled: a network a fraction of the teacher's cost (its GFLOP an image above) learns the teacher's "
        "function more closely than the data's (docs/performance.md).",
    ]


def pairs_table(den, judge, pairs: dict, backend: str, view: str) -> list[str]:
    """The card's table of the pairs the pages offer (pairs: kind -> (first, second, count)), judged again for the card
    as the page makes them, seeds 0..19 (anagram_rate, hybrid_rate at the edition's CFG scale)."""
    rates = {"anagram": anagram_rate, "hybrid": hybrid_rate}
    found = [
        f"| {kind} | {a} / {b} | {round(rates[kind](den, judge, [a, b])[2] * 20)} of 20 |"
        for kind in ("anagram", "hybrid")
        for a, b, _ in pairs.get(kind, ())
    ]
    return [
        f'## Pairs that work (tools/search_illusions.py --backend "{backend}")',
        "",
        "Found by the search (every pair of names screened on a coarse sampler, the best again on the pages' sampler, the "
        "best judged as the page makes them); the pages offer these as buttons. Judged for this card as the page makes "
        f"them over seeds 0..19 (CFG {edition_of(den).scale:g}):",
        "",
        f"| illusion | first / second (anagram: as is / {view}; hybrid: far / near) | read as both |",
        "|---|---|---|",
        *found,
        "",
    ]


def card(per_name: int = 8, scales=(7.0, 3.0)) -> None:
    from lab.fall2024 import COURSE_PROMPTS

    torch.set_num_threads(2)
    den, judge = load_backend(BACKEND), load_classifier("emoji")
    x_ref, y_ref = heldout()
    ref_labels, ref_feats = predict(judge, x_ref)
    judge_acc = accuracy(ref_labels, y_ref)
    floor = frechet_distance(ref_feats[0::2], ref_feats[1::2])  # every name in both halves (the renderings are by name)
    rows = []
    for scale in scales:
        t0 = time.time()
        x, y = cfg_samples(den, per_name, scale)
        labels, feats = predict(judge, (x + 1) / 2)
        rows.append(
            (scale, accuracy(labels, y), frechet_distance(feats, ref_feats), weakest(den, labels, y), time.time() - t0)
        )
        if scale == scales[0]:
            save_samples(den, x, per_name, "parta_emoji_samples")
    an = COURSE_PROMPTS["anagram"][:2]
    hy = COURSE_PROMPTS["hybrid"][:2]
    anagram = anagram_rate(den, judge, an)
    hybrids = {sigma: hybrid_rate(den, judge, hy, sigma) for sigma in (1.0, 2.0)}
    from models.emoji_unet import load_emoji_file

    stem = ALL_BACKENDS[BACKEND][0]  # a flow network, read as DDPM
    r = load_emoji_file(WEIGHTS / f"{stem}.safetensors")[1]["train"]
    lines = [
        "# parta_emoji: Part A in colour, offline (the Fall 2024 edition: DDPM)",
        "",
        f"- Model: a flow network ({stem}.safetensors, trained as the Fall 2026 colour model is, on the course's UNet), "
        f"read as DDPM: {network(den)}.",
        f"- Experiment: class-conditional DDPM as the other Part A backends, T = {r['T']}, {r['schedule']} betas "
        "(DeepFloyd IF's), the noise eps as the model's estimate, images in [-1, 1], the null name for CFG. The network "
        "was trained by flow matching on x_tau = (1 - tau) eps + tau x0, whose point x_tau = x_t / (a + s) at tau = "
        "a / (a + s) is DDPM's x_t = a x0 + s eps (a = sqrt(abar_t), s = sqrt(1 - abar_t)); there eps = x_tau - tau v "
        "with v the network's velocity (models/emoji_backend.py): the same distribution, read as the noise, so the "
        "course's sampler (strided timesteps, step A.3, CFG on the noise) runs on it unchanged. CFG gamma on the noise is "
        "w = gamma - 1 on the velocity.",
        f"- Data: tools/emoji_data.py: {len(den.names)} emoji of Debian's fonts-noto-color-emoji (art: Apache 2.0, Google's Noto "
        f"Emoji; font: SIL OFL 1.1), names from Unicode's CLDR short names; {r['per_name']} augmentations per name at "
        f"{r['size']} px (60-90 % scale, shift, light random background, skin tones for people), seed {r['data_seed']}. Nothing "
        "rendered is committed.",
        *distilled(r, "--objective flow ", "parta_emoji.md", teacher_card="parta_emoji_flow.md"),
        "- Why a flow network: networks trained on DDPM's noise judged 91 % at gamma 3 only with self-attention at 8 px "
        "(0.50 GFLOP an image: `git log -p models/weights/parta_emoji.md`); smaller ones 69 % (fast, distilled) and "
        "2-22 % (the course's UNet, on the noise and on v), where a flow network reads as DDPM at the figures below at a "
        "fraction of the cost. Why not the Fall 2026 colour model's network (parta_emoji_flow.safetensors, read as DDPM "
        "here before): this one costs 0.55-0.9x as much a page (the course's UNet: BatchNorm folded, no GroupNorm); as a "
        "flow model its hybrids read as both far less often (docs/performance.md). This card: `python "
        "tools/judge_emoji.py card`.",
        "- Figure: parta_emoji_samples.png (4 samples of every name, CFG 7, in the order of the names below).",
        "",
        "## Metrics",
        "",
        f"Sampler: DDPM, timesteps 990 .. 0 by 30 (34 steps); {per_name} samples per name, seed 0. Judge: classifier_emoji "
        f"(held-out accuracy {judge_acc:.2%}); FID in its 128-d features against {len(x_ref)} held-out renderings; floor "
        f"(held-out renderings of even index against those of odd index): {floor:.2f}.",
        "",
        "| CFG scale | judged accuracy | FID | weakest names | time |",
        "|---|---|---|---|---|",
        *(f"| {s:g} | {acc:.2%} | {fid:.2f} | {worst} | {t:.0f} s |" for s, acc, fid, worst, t in rows),
        "",
        f"Anagram, the page's default ({an[0]!r} as is, {an[1]!r} upside down: {den.name_of(an[0])} / {den.name_of(an[1])}), CFG 7, "
        f"20 seeds: as is read as {den.name_of(an[0])} {anagram[0]:.0%}, flipped read as {den.name_of(an[1])} {anagram[1]:.0%}, "
        f"both {anagram[2]:.0%}.",
        "",
        *(
            f"Hybrid, the page's default ({hy[0]!r} far, {hy[1]!r} near: {den.name_of(hy[0])} / {den.name_of(hy[1])}), kernel "
            f"{hybrid_kernel(den)}, sigma {s:g}, CFG 7, 20 seeds: far read in its low-pass (blurred, sigma {s:g}) "
            f"{h[0]:.0%}, near read as it is {h[1]:.0%}, both {h[2]:.0%}."
            for s, h in hybrids.items()
        ),
        "",
        *pairs_table(den, judge, ILLUSIONS, BACKEND, "flipped"),
        "## Names",
        "",
        ", ".join(den.names),
    ]
    (WEIGHTS / "parta_emoji.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def flow_card(per_name: int = 8, scales=(7.0, 2.0)) -> None:
    """parta_emoji_flow.md: the Fall 2026 colour model's card (metrics at each w, the course's illusions, the judge's
    pairs from runs/illusions_*_Emoji_(colour,_flow).json where the search wrote them)."""
    from lab.fall2026 import COURSE_PROMPTS as FLOW_COURSE_PROMPTS
    from models.emoji_unet import load_emoji_file

    torch.set_num_threads(2)
    den, judge = load_backend(FLOW_BACKEND), load_classifier("emoji")
    e = edition_of(den)
    x_ref, _ = heldout()
    _, ref_feats = predict(judge, x_ref)
    floor = frechet_distance(ref_feats[0::2], ref_feats[1::2])
    rows = []
    for w in scales:
        t0 = time.time()
        x, y = cfg_samples(den, per_name, w)
        labels, feats = predict(judge, (x.clamp(-1, 1) + 1) / 2)
        rows.append(
            (w, accuracy(labels, y), frechet_distance(feats, ref_feats), weakest(den, labels, y), time.time() - t0)
        )
        if w == scales[-1]:
            save_samples(den, x, per_name, "parta_emoji_flow_samples")
    an, hy = FLOW_COURSE_PROMPTS["anagram"][:2], FLOW_COURSE_PROMPTS["hybrid"][:2]
    anagram, hybrid = anagram_rate(den, judge, an), hybrid_rate(den, judge, hy)
    kernel, sigma = e.blur(den)
    r = load_emoji_file(WEIGHTS / "parta_emoji_flow.safetensors")[1]["train"]
    lines = [
        "# parta_emoji_flow: Part A in colour for the Fall 2026 edition (flow matching), offline",
        "",
        f"- Model: {network(den)}, fed t * {r['T']} as its timestep.",
        f"- Experiment: class-conditional flow matching, the course's Fall 2026 convention: x_t = (1 - t) eps + t x1 with t ~ "
        f"U[0, 1] (t = 0 noise, t = 1 the image), the velocity x1 - eps as the target, images in [-1, 1], the null class for a "
        f"name with p {r['p_uncond']} (CFG).",
        f"- Data: as parta_emoji's (tools/emoji_data.py, {r['per_name']} augmentations per name at {r['size']} px, seed "
        f"{r['data_seed']}).",
        *(
            distilled(r, "--objective flow ", "parta_emoji_flow.md")
            + ["- This card: `python tools/judge_emoji.py --flow card`."]
            if r.get("teacher")
            else [
                f"- Exact command: `python tools/train_emoji.py --objective flow --threads 1 --steps {r['steps']}`, then `python "
                "tools/train_emoji.py --objective flow --export`; this card: `python tools/judge_emoji.py --flow card`.",
                f"- Trained: {r['steps_done']} steps of batch {r['batch_size']} (AdamW {r['lr']:g}, {r['warmup']} warm-up steps, cosine "
                f"decay; EMA {r['ema']} of the weights ships), {r['elapsed_s'] / 60:.0f} min on a 2-core x86_64 CPU (torch "
                f"{torch.__version__}, {r['threads']} thread, beside other work; paused while benchmarks ran; no GPU was lent).",
            ]
        ),
        f"- Figure: parta_emoji_flow_samples.png (4 samples of every name at w {scales[-1]:g}, the pages' default).",
        "",
        "## Metrics",
        "",
        f"Sampler: Euler, 50 steps (h = 0.02), as the pages; {per_name} samples per name, seed 0. Judge: classifier_emoji; "
        f"FID in its features against {len(x_ref)} held-out renderings (floor {floor:.2f}; CFG's saturated colours lie far "
        "from the renderings in the judge's features: read the accuracy).",
        "",
        "| CFG w (v = v_c + w (v_c - v_u)) | judged accuracy | FID | weakest names | time |",
        "|---|---|---|---|---|",
        *(f"| {w:g} | {acc:.2%} | {fid:.2f} | {worst} | {t:.0f} s |" for w, acc, fid, worst, t in rows),
        "",
        f"Anagram, the course's ({an[0]!r} as is, {an[1]!r} rotated by 180 degrees: {den.name_of(an[0])} / {den.name_of(an[1])}), "
        f"w {e.scale:g}, 20 seeds: as is {anagram[0]:.0%}, rotated {anagram[1]:.0%}, both {anagram[2]:.0%}.",
        "",
        f"Hybrid, the course's ({hy[0]!r} far, {hy[1]!r} near), kernel {kernel}, sigma {sigma:g} (265 and 16 at 512 px, scaled "
        f"to {den.image_shape[1]} px), w {e.scale:g}, 20 seeds: far read in its low-pass {hybrid[0]:.0%}, near as it is "
        f"{hybrid[1]:.0%}, both {hybrid[2]:.0%}.",
        "",
        *pairs_table(den, judge, FLOW_ILLUSIONS, FLOW_BACKEND, "rotated"),
        "## Names",
        "",
        ", ".join(den.names),
    ]
    (WEIGHTS / "parta_emoji_flow.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["judge", "card", "sweep", "grain"])
    ap.add_argument("files", nargs="*", help="grain: colour flow weights files (tools/train_emoji.py --export)")
    ap.add_argument("--flow", action="store_true", help="the Fall 2026 colour model (Emoji (colour, flow)): CFG as w")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scales", default="2,3,4,5,7", help="sweep: the CFG scales, comma-separated")
    ap.add_argument("--per-name", type=int, default=16, help="sweep: samples of each name at each scale")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "sweep":
        sweep([float(s) for s in args.scales.split(",")], args.per_name, backend=FLOW_BACKEND if args.flow else BACKEND)
    elif args.what == "grain":
        grain(args.files or [str(WEIGHTS / "parta_emoji_flow.safetensors")])
    elif args.what == "card":
        flow_card() if args.flow else card()
    else:
        export_judge()
