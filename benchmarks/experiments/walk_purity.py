"""How often a random walk of h nearest-neighbour hops through the pool VAE's latent space ends
on an image of the start's class (k = 5, every training image as a start, 20 walks each).

The labels are read here only to measure the walk; the neighbour transform never reads them.

    python benchmarks/experiments/walk_purity.py     # needs runs/exp1/generators/vae-pool-seed100
"""

import torch

import genaug
from genaug.data import load_dataset, train_test_split
from genaug.transforms import NeighbourWalk
from genaug.transforms.neighbours import build_latent_bank

torch.set_num_threads(1)
ds = load_dataset("digits", image_size=32)
train, test = train_test_split(ds, 0.3, 0)
m = genaug.load_generator("runs/exp1/generators/vae-pool-seed100", device="cpu").eval()
bank = build_latent_bank(NeighbourWalk(train.images, k=5, hops=2), m, "x")
y = train.targets
g = torch.Generator().manual_seed(0)
start = torch.arange(len(y)).repeat(20)
cur = bank.graph[start, torch.randint(0, 5, (len(start),), generator=g)]
for h in range(1, 25):
    if h in (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24):
        print(
            h,
            "same class",
            round((y[cur] == y[start]).float().mean().item(), 3),
            "distinct per start",
            len(set(zip(start.tolist(), cur.tolist()))) / len(y),
        )
    cur = bank.graph[cur, torch.randint(0, 5, (len(start),), generator=g)]
