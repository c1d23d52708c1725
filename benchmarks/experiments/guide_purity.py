"""How much the guide (the labelled shots' classes spread over the pool) purifies the walk.

For the pool VAEs of exploration seeds 100-103 and 1, 2 and 5 shots per class (the bench's own
k-shot subsets): the share of pool images given their true class by label propagation, and the
share of random 6-hop walks (k 5) from each labelled image that end on its class, free (the
published walk) and guided. The pool's true labels are read here only to score the walk.
The last column is the same label propagation on the raw pixels (no generator): how much the
VAE's latent space itself adds.

    python benchmarks/experiments/guide_purity.py     # needs runs/exp10/generators (exp10.yaml)
"""

import torch

import genaug
from genaug.data import few_shot_split, load_dataset, train_test_split
from genaug.transforms import NeighbourWalk
from genaug.transforms import functional as F
from genaug.transforms.neighbours import build_latent_bank, propagate_labels

torch.set_num_threads(1)
HOPS, K, WALKS = 6, 5, 200
dataset = load_dataset("digits", image_size=32)
train, _ = train_test_split(dataset, 0.3, 0)
truth = train.targets  # the bank is every training image, in this order


def walk_purity(model, bank, starts, start_labels, guided: bool) -> float:
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        z = model.encode(starts.float() / 255, None).mean
    labels = start_labels if guided else None
    bank_labels = bank.labels if guided else None
    indices, _ = F.nearest_latents(z, labels, bank.latents, bank_labels, K)
    rows = torch.arange(len(starts)).repeat(WALKS)
    target = indices[rows, torch.randint(0, K, (len(rows),), generator=g)]
    for _ in range(HOPS - 1):
        target = bank.graph[target, torch.randint(0, K, (len(rows),), generator=g)]
    return (truth[target] == start_labels[rows]).float().mean().item()


print("seed shots propagation-accuracy walk-purity-free walk-purity-guided pixel-propagation")
for seed in (100, 101, 102, 103):
    model = genaug.load_generator(f"runs/exp10/generators/vae-pool-seed{seed}", device="cpu")
    model.eval()

    free = build_latent_bank(NeighbourWalk(train.without_labels(), K, HOPS), model, "x")
    for shots in (1, 2, 5):
        split = few_shot_split(dataset, shots, seed, 0.3, 0)
        walk = NeighbourWalk(train.without_labels(), K, HOPS, guide=split.labeled)
        guided = build_latent_bank(walk, model, "x")
        accuracy = (guided.labels == truth).float().mean().item()
        images, labels = split.labeled.images, split.labeled.targets
        pixels = propagate_labels(
            train.images.flatten(1).float() / 255, images.flatten(1).float() / 255, labels
        )
        print(
            seed,
            shots,
            f"{accuracy:.3f}",
            f"{walk_purity(model, free, images, labels, False):.3f}",
            f"{walk_purity(model, guided, images, labels, True):.3f}",
            f"{(pixels == truth).float().mean().item():.3f}",
            flush=True,
        )
