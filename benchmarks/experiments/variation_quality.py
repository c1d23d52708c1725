"""A fast proxy for a generator's variations of classes it never saw (mode ``vary``: an
image-conditioned generator, or a diffusion model's SDEdit at ``--strength``).

For a fixed, seeded set of exemplars (``--per-class`` images of every new class) it makes
``--variations`` variations of each with ``model.vary`` and reports, as one JSON line:

- class preservation: the fraction of variations whose nearest neighbour among the new-class
  images, *the exemplar itself excluded*, is of the exemplar's class (pixel L2 and cosine at the
  model's size). Next to it the same figure for three references: ``copy`` (the variation is the
  exemplar unchanged: leave-one-out 1-NN, what a generator that copies gets), ``randaugment``
  (torchvision v2.RandAugment on the uint8 exemplar, zero fill = background) and ``real`` (the
  "variation" is another real drawing of the class: what true within-class variation scores).
- diversity: mean absolute pixel difference (images in [0, 1]) between two variations of one
  exemplar (``pair``), and between a variation and its exemplar (``to_exemplar``); the same for
  RandAugment, and between two real drawings of one class (``real``) for scale.
- ``ink``: mean pixel value of the variations against the exemplars' (strokes are ink = 1).

A generator that copies scores ``copy``'s preservation with zero diversity; useful variations
keep preservation near ``randaugment``'s or above while their diversity is clearly above 0.
It also saves a PNG grid: 12 exemplars of 12 classes, each followed by 6 variations.

    python benchmarks/experiments/variation_quality.py runs/omniglot-base/dagan --grid g.png
    python benchmarks/experiments/variation_quality.py runs/omniglot-base/diffusion --strength 0.3
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import Tensor
from torchvision.transforms import v2

import genaug
from genaug.data import load_dataset
from genaug.plots import save_image_rows

NEW = (
    "omniglot:../shared/data/omniglot/images_background_small2.zip"  # from the repository root
    "@Japanese_(katakana),Sanskrit,Tagalog"
)


def pick_exemplars(targets: Tensor, per_class: int, seed: int) -> Tensor:
    """Indices (K * per_class,) of ``per_class`` seeded images of every class, class by class."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in targets.unique().tolist():
        members = (targets == c).nonzero().squeeze(1)
        picks.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(picks)


def nn_same_class(
    queries: Tensor, owners: Tensor, bank: Tensor, targets: Tensor, also: Tensor | None = None
) -> dict[str, float]:
    """Fraction of queries (Q, D) whose nearest bank row (N, D), row ``owners[q]`` (and
    ``also[q]`` when given) excluded, has the class of ``owners[q]``; by L2 and by cosine."""
    out = {}
    for name in ("l2", "cos"):
        if name == "l2":
            score = -torch.cdist(queries, bank)  # (Q, N), higher = nearer
        else:
            q = torch.nn.functional.normalize(queries, dim=1)
            score = q @ torch.nn.functional.normalize(bank, dim=1).T
        score[torch.arange(len(queries)), owners] = -float("inf")  # never the exemplar itself
        if also is not None:  # a real "variation" is in the bank too: not itself either
            score[torch.arange(len(queries)), also] = -float("inf")
        nearest = score.argmax(1)
        out[name] = round(float((targets[nearest] == targets[owners]).float().mean()), 4)
    return out


def pair_distance(a: Tensor, b: Tensor) -> float:
    """Mean absolute pixel difference of two equally shaped image batches in [0, 1]."""
    return round(float((a - b).abs().mean()), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="checkpoint or run folder of an image-conditioned model")
    parser.add_argument("--data", default=NEW, help="the new classes (default: the tuning split)")
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--variations", type=int, default=6)
    parser.add_argument(
        "--strength", type=float, default=1.0, help="vary's strength (diffusion: e.g. 0.3)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", help="PNG path for the preview grid")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()

    model = genaug.load_generator(args.checkpoint, device="cpu").eval()
    data = load_dataset(args.data, image_size=model.image_size, channels=model.channels)
    # An unconditional model (a diffusion model trained --unlabeled) records its classes in
    # its data description.
    seen = set(getattr(model, "class_names", []) or [])
    seen |= set(getattr(model, "data_description", {}).get("class_names", []))
    overlap = seen & set(data.class_names)
    images_u8, targets = data.images, data.targets  # (N, C, S, S) uint8, (N,)
    bank = images_u8.float().flatten(1) / 255  # (N, D)
    chosen = pick_exemplars(targets, args.per_class, args.seed)  # (E,)
    exemplars = images_u8[chosen].float() / 255  # (E, C, S, S)
    v = args.variations
    owners = chosen.repeat_interleave(v)  # (E * V,) the exemplar each variation came from

    g = torch.Generator().manual_seed(args.seed)
    varied = model.vary(exemplars.repeat_interleave(v, 0), args.strength, generator=g)
    torch.manual_seed(args.seed)  # RandAugment draws from the global RNG
    randaug = v2.RandAugment()
    classic = torch.stack([randaug(images_u8[i]) for i in owners.tolist()]).float() / 255
    # "real": another drawing of the exemplar's class (the next one in its class, cyclically).
    real = []
    for i in chosen.tolist():
        members = (targets == targets[i]).nonzero().squeeze(1).tolist()
        real.append(members[(members.index(i) + 1) % len(members)])
    real = torch.tensor(real)
    real_images = images_u8[real].float() / 255

    def spread(x: Tensor) -> dict[str, float]:
        x = x.view(len(chosen), v, *x.shape[1:])
        near = exemplars[:, None].expand_as(x)  # (E, V, C, S, S)
        return {"pair": pair_distance(x[:, 0], x[:, 1]), "to_exemplar": pair_distance(x, near)}

    report = {
        "checkpoint": args.checkpoint,
        "strength": args.strength,
        "exemplars": len(chosen),
        "variations": v,
        "classes_seen_by_model": len(overlap),
        "preservation": nn_same_class(varied.flatten(1), owners, bank, targets),
        "preservation_copy": nn_same_class(exemplars.flatten(1), chosen, bank, targets),
        "preservation_randaugment": nn_same_class(classic.flatten(1), owners, bank, targets),
        "preservation_real": nn_same_class(real_images.flatten(1), chosen, bank, targets, real),
        "diversity": spread(varied),
        "diversity_randaugment": spread(classic),
        "diversity_real": pair_distance(real_images, exemplars),
        "ink": round(float(varied.mean()), 4),
        "ink_exemplars": round(float(exemplars.mean()), 4),
    }
    if args.grid:
        rows = torch.linspace(0, len(chosen) - 1, 12).round().long()  # 12 exemplars, 12 classes
        shown = varied.view(len(chosen), v, *exemplars.shape[1:])[rows, :6]
        grid = torch.cat([exemplars[rows, None], shown], 1).flatten(0, 1)
        names = [data.class_names[int(targets[chosen[r]])] for r in rows.tolist()]
        save_image_rows(grid, names, args.grid, title=f"strength {args.strength}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
