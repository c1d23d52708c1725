"""Issue 21 exploration: hallucinator settings on precomputed features (no bench, minutes).

Extracts the base classifier's features of the base classes' images once (with translated
copies, as `genaug train --augment translation` shows them), trains hallucinators of each
setting on them with the family's own losses (Hallucinator.pair_losses / episode_losses), and
scores prototype and probe heads on the exploration episodes (100-107 of the Omniglot tuning
split: the bench's episodes, the same classes, shots and test images), with and without the
hallucinated features. Prints one line per setting; writes a JSON with --out.

    python benchmarks/experiments/hallucinator_sweep.py --extractor runs/omniglot-references/pretrained/base-classifier --out benchmarks/results/experiments/hallucinator_sweep.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.nn import functional as F

from genaug.bench import build_bench_config
from genaug.bench.plan.splits import make_split
from genaug.data import load_dataset
from genaug.fewshot import fit_head
from genaug.models.diffaugment import diff_augment
from genaug.models.features import FeatureExtractor
from genaug.models.hallucinator import Hallucinator

CONFIG = "benchmarks/experiments/omniglot_references.yaml"


def base_features(extractor, base, copies: int, seed: int = 0):
    """Unit features of the base images, plain and ``copies`` translated copies (with labels)."""
    torch.manual_seed(seed)
    x = base.images.float() / 255.0
    feats, labels = [extractor(x)], [base.targets]
    for _ in range(copies):
        feats.append(extractor(diff_augment(x, "translation")))
        labels.append(base.targets)
    return F.normalize(torch.cat(feats), dim=1), torch.cat(labels)


def pairs(labels: torch.Tensor, n: int, generator: torch.Generator):
    """``n`` (anchor, partner) index pairs of one class, anchor != partner."""
    anchors = torch.randint(0, len(labels), (n,), generator=generator)
    partners = torch.empty_like(anchors)
    for i, a in enumerate(anchors.tolist()):
        same = torch.nonzero(labels == labels[a]).squeeze(1)
        same = same[same != a]
        partners[i] = same[torch.randint(0, len(same), (1,), generator=generator)]
    return anchors, partners


def train(setting: dict, feats, labels, steps: int, seed: int = 0) -> Hallucinator:
    torch.manual_seed(seed)
    model = Hallucinator(feature_dim=feats.shape[1], **setting).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        a, p = pairs(labels, 64, generator)
        if model.objective == "pairs":
            loss = model.pair_losses(feats[a], feats[p])["loss"]
        else:
            loss = model.episode_losses(feats[a], feats[p], labels[a])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def score(episodes, extractor, model, head: str, count: int, weight: float) -> float:
    accs = []
    for support_x, support_y, query_f, query_y in episodes:
        f = support_x
        w = torch.ones(len(f))
        y = support_y
        if model is not None and count:
            made = model.hallucinate(f, count, generator=torch.Generator().manual_seed(0))
            f = torch.cat([f, made])
            y = torch.cat([y, support_y.repeat_interleave(count)])
            w = torch.cat([w, torch.full((len(made),), weight)])
        fitted = fit_head(head, f, y, 20, w, regularisation=1e-2)
        accs.append(float((fitted(query_f).argmax(1) == query_y).float().mean()))
    return 100 * sum(accs) / len(accs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractor", required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = build_bench_config(CONFIG).validate()
    extractor = FeatureExtractor.from_folder(args.extractor)
    new = load_dataset(config.data, image_size=config.image_size)
    base = load_dataset(config.pretrain_data, image_size=config.image_size, channels=1)
    feats, labels = base_features(extractor, base, args.copies)
    episodes = {}
    for shots in config.shots:
        episodes[shots] = []
        for seed in config.seeds:
            split = make_split(config, new, shots, seed)
            episodes[shots].append(
                (
                    extractor(split.labeled.images),
                    split.labeled.targets,
                    extractor(split.test.images),
                    split.test.targets,
                )
            )
    settings = {
        "none": None,
        "pairs beta1 spread0.1": dict(objective="pairs", beta=1.0, spread=0.1),
        "pairs beta1 spread0.03": dict(objective="pairs", beta=1.0, spread=0.03),
        "pairs beta0.1 spread0.03": dict(objective="pairs", beta=0.1, spread=0.03),
        "episodes views4": dict(objective="episodes", views=4),
        "episodes views1": dict(objective="episodes", views=1),
    }
    results = []
    for name, setting in settings.items():
        started = time.perf_counter()
        model = None if setting is None else train(setting, feats, labels, args.steps)
        seconds = time.perf_counter() - started
        for shots, eps in episodes.items():
            for head in ("proto", "probe"):
                for count, weight in ((5, 1.0), (5, 0.3), (20, 0.3)) if model else ((0, 1.0),):
                    acc = score(eps, extractor, model, head, count, weight)
                    results.append(
                        dict(
                            setting=name,
                            shots=shots,
                            head=head,
                            count=count,
                            weight=weight,
                            accuracy=round(acc, 2),
                            train_seconds=round(seconds, 1),
                        )
                    )
                    print(
                        f"{name:28s} {shots} {head:5s} count {count:2d} w {weight}: {acc:.1f}",
                        flush=True,
                    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
