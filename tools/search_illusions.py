"""Which pairs of names make illusions on a class backend, found by its judge, not by eye.

    python tools/search_illusions.py anagram   # flip anagrams: every pair of names, then the best, then 20 seeds
    python tools/search_illusions.py hybrid    # hybrids (far, near) at the page's kernel and sigma 2, the same way
    python tools/search_illusions.py anagram --backend "Emoji (colour, flow)"   # the Fall 2026 pages: rotated by
                                               # 180 degrees, hybrids at the course's blur scaled, CFG w 7
    python tools/search_illusions.py anagram --backend "MNIST digits (flow)"    # the digits' pairs (classes)

The course's anagram (old man / campfire) and hybrid (skull / waterfalls) read as both prompts in 0 of 20 seeds on
this small model. This searches every pair of its names in three rounds, each on fewer pairs with more samples:
1. screen: every pair (anagrams: unordered, since a flip anagram of (a, b) turned over is one of (b, a); hybrids: the
   --far names whose blurred renderings the judge reads best, as far, with every other as near), one image each, on
   a coarse sampler (timesteps by 90, 12 steps), scored by the judge's probabilities (their product);
2. the best --keep pairs: 8 images each on the pages' sampler (timesteps by 30, 34 steps), counted;
3. the best --final pairs: as the page makes them, one image per seed, seeds 0..19 (tools/judge_emoji.py's rates).
All loops of a round run through one serving.batching.LoopBatcher, as the room runs its requests: one model call per step.
The result (JSON) goes to --out; models/emoji_backend.py's ILLUSIONS (FLOW_ILLUSIONS) lists what the pages offer, and
serving.defaults the digit backends' default pairs.
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
from lab.filters import gaussian_blur  # noqa: E402
from models.bundled import ALL_BACKENDS, load_backend, load_classifier  # noqa: E402
from serving.batching import LoopBatcher  # noqa: E402
from tools.judge_emoji import BACKEND, anagram_rate, edition_of, hybrid_rate  # noqa: E402


def run_all(den, loops: list, max_rows: int = 256) -> list[torch.Tensor]:
    """Run lab loops (course functions' ``steps``) together: one model call per step for all, as the room does."""
    batcher = LoopBatcher(den, max_rows=max_rows)
    with ThreadPoolExecutor(len(loops)) as pool:
        return list(pool.map(batcher.run, loops))


@torch.no_grad()
def probs(judge, images: torch.Tensor) -> torch.Tensor:
    """The judge's probabilities (N, names) of images in [-1, 1]."""
    x = (images.clamp(-1, 1) + 1) / 2
    return judge.fc2(judge.features(x)).softmax(1)


def names_of(den) -> tuple[str, ...]:
    """A class backend's prompts, one per class: the emoji backends' names, the digits' classes."""
    return den.names or den.prompts


def make(den, kind: str, pair: tuple[int, int], n: int, seed: int, coarse: bool):
    e, names = edition_of(den), [names_of(den)[k] for k in pair]
    if kind == "anagram":
        return e.anagram(den, names, n, e.scale, seed, coarse, steps=True)
    return e.hybrid(den, names, n, e.scale, seed, coarse=coarse, steps=True)


def readings(den, judge, kind: str, x: torch.Tensor, pair: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the judge's probability of the first prompt in its view, and of the second in its own."""
    e = edition_of(den)
    if kind == "anagram":
        first, second = probs(judge, x), probs(judge, lab.get_view(e.view).view(x))
    else:
        first, second = probs(judge, gaussian_blur(x, *e.blur(den))), probs(judge, x)
    return first[:, pair[0]], second[:, pair[1]]


def round_(den, judge, kind: str, pairs: list, n: int, coarse: bool, seed: int) -> list[dict]:
    t0 = time.time()
    loops = [make(den, kind, p, n, seed, coarse) for p in pairs]
    out = []
    for p, x in zip(pairs, run_all(den, loops)):
        a, b = readings(den, judge, kind, x, p)
        out.append(
            dict(
                pair=[names_of(den)[k] for k in p],
                score=float((a * b).mean()),
                both=int(((a > 0.5) & (b > 0.5)).sum()),
                n=n,
            )
        )
    out.sort(key=lambda r: (-r["both"], -r["score"]))
    print(
        f"{len(pairs)} pairs x {n} images, {'a coarse' if coarse else 'the pages'} sampler: {time.time() - t0:.0f} s; best: "
        + "; ".join(f"{r['pair'][0]} / {r['pair'][1]} {r['both']}/{n} ({r['score']:.2f})" for r in out[:8]),
        flush=True,
    )
    return out


def blur_survivors(den, judge, count: int, dataset: str) -> list[int]:
    """The count names whose held-out images the judge reads best once blurred as the hybrid's low-pass."""
    if dataset == "emoji":
        from tools.judge_emoji import heldout

        x, y = heldout()
        x = x * 2 - 1
    else:
        from lab.data import load_dataset

        held = load_dataset(dataset, "heldout")
        x, y = held.as_float(-1, 1), held.labels
    p = probs(judge, gaussian_blur(x, *edition_of(den).blur(den)))
    read = torch.stack([p[y == c, c].mean() for c in range(len(names_of(den)))])
    order = read.argsort(descending=True)[:count].tolist()
    print(
        "far candidates (the judge's mean probability of the name in blurred images): "
        + ", ".join(f"{names_of(den)[c]} {read[c]:.2f}" for c in order),
        flush=True,
    )
    return order


def search(kind: str, keep: int, final: int, far: int, backend: str = BACKEND) -> dict:
    dataset = ALL_BACKENDS[backend][1]
    den, judge = load_backend(backend), load_classifier(dataset)
    e = edition_of(den)
    K = len(names_of(den))
    if kind == "anagram":  # a view that is its own inverse (flip, rotate_180): (a, b) turned over is (b, a)
        pairs = list(itertools.combinations(range(K), 2)) if K > 10 else list(itertools.permutations(range(K), 2))
    else:  # the far prompt must survive the blur: names whose blurred images the judge still reads, best first
        pairs = [(f, k) for f in blur_survivors(den, judge, min(far, K), dataset) for k in range(K) if k != f]
    screen = round_(den, judge, kind, pairs, n=1, coarse=True, seed=1)
    index = {name: k for k, name in enumerate(names_of(den))}
    best = [tuple(index[n] for n in r["pair"]) for r in sorted(screen, key=lambda r: -r["score"])[:keep]]
    second = round_(den, judge, kind, best, n=8, coarse=False, seed=2)
    results = []
    for r in second[:final]:
        t0 = time.time()
        rate = anagram_rate(den, judge, r["pair"]) if kind == "anagram" else hybrid_rate(den, judge, r["pair"])
        results.append(dict(pair=r["pair"], first=rate[0], second=rate[1], both=rate[2], seeds=20))
        print(
            f"{kind} {r['pair'][0]} / {r['pair'][1]}, 20 seeds as the page makes them: first {rate[0]:.0%}, second "
            f"{rate[1]:.0%}, both {rate[2]:.0%} ({time.time() - t0:.0f} s)",
            flush=True,
        )
    results.sort(key=lambda r: -r["both"])
    return dict(
        kind=kind,
        backend=backend,
        edition=e.name,
        view=e.view if kind == "anagram" else None,
        scale=e.scale,
        blur=e.blur(den) if kind == "hybrid" else None,
        screened=len(pairs),
        screen_top=screen[:20],
        second=second,
        final=results,
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["anagram", "hybrid"])
    ap.add_argument("--keep", type=int, default=40, help="pairs of the screen that round 2 samples again")
    ap.add_argument("--final", type=int, default=8, help="pairs of round 2 judged over 20 seeds as the page makes them")
    ap.add_argument("--far", type=int, default=12, help="hybrid: far names screened (those that best survive the blur)")
    ap.add_argument("--backend", default=BACKEND, help="a bundled class backend (its edition's sampler, view and blur)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--out", type=Path, default=None, help="the result as JSON (default runs/illusions_KIND_BACKEND.json)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = search(args.kind, args.keep, args.final, args.far, args.backend)
    out = args.out or ROOT / "runs" / f"illusions_{args.kind}_{args.backend.replace(' ', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
