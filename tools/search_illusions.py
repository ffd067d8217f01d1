"""Which pairs of names make illusions on the colour backend, found by its judge, not by eye.

    python tools/search_illusions.py anagram   # flip anagrams: every pair of names, then the best, then 20 seeds
    python tools/search_illusions.py hybrid    # hybrids (far, near) at the page's kernel and sigma 2, the same way

The course's anagram (old man / campfire) and hybrid (skull / waterfalls) read as both prompts in 0 of 20 seeds on
this small model. This searches every pair of its names in three rounds, each on fewer pairs with more samples:
1. screen: every pair (anagrams: unordered, since a flip anagram of (a, b) turned over is one of (b, a); hybrids: the
   --far names whose blurred renderings the judge reads best, as far, with every other as near), one image each, on
   a coarse sampler (timesteps by 90, 12 steps), scored by the judge's probabilities (their product);
2. the best --keep pairs: 8 images each on the pages' sampler (timesteps by 30, 34 steps), counted;
3. the best --final pairs: as the page makes them, one image per seed, seeds 0..19 (tools/judge_emoji.py's rates).
All loops of a round run through one serving.batching.LoopBatcher, as the room runs its requests: one model call per step.
The result (JSON) goes to --out; models/emoji_backend.py's ILLUSIONS lists what the pages offer.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import lab  # noqa: E402
from serving.batching import LoopBatcher  # noqa: E402
from lab.course import CFG_SCALE  # noqa: E402
from lab.filters import gaussian_blur  # noqa: E402
from models.bundled import load_backend, load_classifier  # noqa: E402
from tools.judge_emoji import BACKEND, anagram_rate, hybrid_kernel, hybrid_rate  # noqa: E402

SIGMA = 2.0  # the hybrid page's default


def run_all(den, loops: list, max_rows: int = 256) -> list[torch.Tensor]:
    """Run lab loops (made under lab.stepping()) together: one model call per step for all, as the room does."""
    batcher = LoopBatcher(den, max_rows=max_rows)
    with ThreadPoolExecutor(len(loops)) as pool:
        return list(pool.map(batcher.run, loops))


@torch.no_grad()
def probs(judge, images: torch.Tensor) -> torch.Tensor:
    """The judge's probabilities (N, names) of images in [-1, 1]."""
    x = (images.clamp(-1, 1) + 1) / 2
    return judge.fc2(judge.features(x)).softmax(1)


def make(den, kind: str, pair: tuple[int, int], n: int, seed: int, stride: int):
    names = [den.names[k] for k in pair]
    common = dict(scale=CFG_SCALE, timesteps=lab.strided_timesteps(den.T, stride), generator=seed)
    if kind == "anagram":
        return lab.visual_anagrams(den, names, ("identity", "flip"), n, **common)
    return lab.make_hybrids(den, names, hybrid_kernel(den), (SIGMA,), n, **common)


def readings(den, judge, kind: str, x: torch.Tensor, pair: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the judge's probability of the first prompt in its view, and of the second in its own."""
    if kind == "anagram":
        first, second = probs(judge, x), probs(judge, lab.get_view("flip").view(x))
    else:
        first, second = probs(judge, gaussian_blur(x, hybrid_kernel(den), SIGMA)), probs(judge, x)
    return first[:, pair[0]], second[:, pair[1]]


def round_(den, judge, kind: str, pairs: list, n: int, stride: int, seed: int) -> list[dict]:
    t0 = time.time()
    with lab.stepping():
        loops = [make(den, kind, p, n, seed, stride) for p in pairs]
    out = []
    for p, x in zip(pairs, run_all(den, loops)):
        a, b = readings(den, judge, kind, x, p)
        out.append(dict(pair=[den.names[k] for k in p], score=float((a * b).mean()), both=int(((a > 0.5) & (b > 0.5)).sum()), n=n))
    out.sort(key=lambda r: (-r["both"], -r["score"]))
    print(f"{len(pairs)} pairs x {n} images, timesteps by {stride}: {time.time() - t0:.0f} s; best: "
          + "; ".join(f"{r['pair'][0]} / {r['pair'][1]} {r['both']}/{n} ({r['score']:.2f})" for r in out[:8]), flush=True)
    return out


def blur_survivors(den, judge, count: int) -> list[int]:
    """The count names whose held-out renderings the judge reads best once blurred as the hybrid's low-pass."""
    from tools.judge_emoji import heldout

    x, y = heldout()
    p = probs(judge, gaussian_blur(x * 2 - 1, hybrid_kernel(den), SIGMA))
    read = torch.stack([p[y == c, c].mean() for c in range(len(den.names))])
    order = read.argsort(descending=True)[:count].tolist()
    print("far candidates (the judge's mean probability of the name in blurred renderings): "
          + ", ".join(f"{den.names[c]} {read[c]:.2f}" for c in order), flush=True)
    return order


def search(kind: str, keep: int, final: int, far: int) -> dict:
    den, judge = load_backend(BACKEND), load_classifier("emoji")
    K = len(den.names)
    if kind == "anagram":
        pairs = list(itertools.combinations(range(K), 2))
    else:  # the far prompt must survive the blur: names whose blurred renderings the judge still reads, best first
        pairs = [(f, k) for f in blur_survivors(den, judge, far) for k in range(K) if k != f]
    screen = round_(den, judge, kind, pairs, n=1, stride=90, seed=1)
    index = {name: k for k, name in enumerate(den.names)}
    best = [tuple(index[n] for n in r["pair"]) for r in sorted(screen, key=lambda r: -r["score"])[:keep]]
    second = round_(den, judge, kind, best, n=8, stride=30, seed=2)
    results = []
    for r in second[:final]:
        t0 = time.time()
        rate = (anagram_rate(den, judge, r["pair"]) if kind == "anagram" else hybrid_rate(den, judge, r["pair"], SIGMA))
        results.append(dict(pair=r["pair"], first=rate[0], second=rate[1], both=rate[2], seeds=20))
        print(f"{kind} {r['pair'][0]} / {r['pair'][1]}, 20 seeds as the page makes them: first {rate[0]:.0%}, second "
              f"{rate[1]:.0%}, both {rate[2]:.0%} ({time.time() - t0:.0f} s)", flush=True)
    results.sort(key=lambda r: -r["both"])
    return dict(kind=kind, scale=CFG_SCALE, sigma=SIGMA if kind == "hybrid" else None, screened=len(pairs),
                screen_top=screen[:20], second=second, final=results)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["anagram", "hybrid"])
    ap.add_argument("--keep", type=int, default=40, help="pairs of the screen that round 2 samples again")
    ap.add_argument("--final", type=int, default=8, help="pairs of round 2 judged over 20 seeds as the page makes them")
    ap.add_argument("--far", type=int, default=12, help="hybrid: far names screened (those that best survive the blur)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="the result as JSON (default runs/illusions_KIND.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = search(args.kind, args.keep, args.final, args.far)
    out = args.out or ROOT / "runs" / f"illusions_{args.kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
