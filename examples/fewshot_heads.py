"""New classes from one image each, on a pretrained model's frozen features.

    python examples/fewshot_heads.py

The digits 0-4 play the base classes you have plenty of: a timm ``resnet10t`` is trained on them
(your own pretrained model goes here). The digits 5-9 are the new classes, one labelled image
each. ``genaug.fewshot.fit_few_shot`` fits a head on the frozen features of those shots -
prototypes (nearest class mean) or a linear probe, with augmented views of the shots - and,
optionally, hallucinated features from a hallucinator trained on the base classes' features.
It prints the accuracy of each on the rest of the new classes' images.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import timm
import torch
from torch.nn import functional as F
from torchvision.transforms import v2

from genaug.data import load_dataset
from genaug.fewshot import FeatureExtractor, fit_few_shot, train_hallucinator


def pretrain(base, steps: int) -> torch.nn.Module:
    """A resnet10t trained on the base classes (stands in for your pretrained model)."""
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", in_chans=1, num_classes=base.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(steps):
        index = torch.randint(0, len(base), (64,))
        x = base.images[index].float() / 255.0
        loss = F.cross_entropy(model((x - 0.5) / 0.5), base.targets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="where the hallucinator is trained")
    parser.add_argument("--tiny", action="store_true", help="a few steps, for the tests")
    args = parser.parse_args()

    digits = load_dataset("digits", image_size=32)
    base = digits.subset(torch.nonzero(digits.targets < 5).squeeze(1))
    new = digits.subset(torch.nonzero(digits.targets >= 5).squeeze(1))
    new_labels = new.targets - 5  # the new classes as 0..4

    shots = torch.stack([torch.nonzero(new_labels == c)[0, 0] for c in range(5)])  # 1 per class
    rest = torch.ones(len(new), dtype=torch.bool)
    rest[shots] = False
    images, labels = new.images[shots], new_labels[shots]

    model = pretrain(base, 20 if args.tiny else 600)
    # The normalisation the model was trained with; images stay [0, 1] (or uint8) outside.
    extractor = FeatureExtractor(model, image_size=32, channels=1, mean=[0.5], std=[0.5])
    augment = v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1))

    def accuracy(classifier) -> float:
        return float((classifier.predict(new.images[rest]) == new_labels[rest]).float().mean())

    for head in ("proto", "probe"):
        plain = fit_few_shot(extractor, images, labels, head=head)
        viewed = fit_few_shot(extractor, images, labels, head=head, views=10, augment=augment)
        print(
            f"{head}: {accuracy(plain):.1%}; with 10 affine views of each shot {accuracy(viewed):.1%}"
        )

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch) / "hallucinator"
        steps = 4 if args.tiny else 300
        result = train_hallucinator(
            extractor, base, out, steps=steps, checkpoint_every=steps, progress=False
        )
        hallucinated = fit_few_shot(
            extractor,
            images,
            labels,
            head="proto",
            views=10,
            augment=augment,
            hallucinator=result.model,
            count=5,
        )
    print(f"proto + views + 5 hallucinated features per shot: {accuracy(hallucinated):.1%}")


if __name__ == "__main__":
    main()
