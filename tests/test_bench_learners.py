"""The learners of base: conditions (bench/plan/learners.py, bench/learn/heads.py): prototypes
and linear probes on the base classifier's frozen features, a gentler fine-tune, a hallucinator
where the head is fit, and the options for generated images (weight, separate BatchNorm
statistics, soft labels, a filter, a cap).

One tiny episodic bench on the made-up Omniglot zips (Tagalog new, Greek base), run once."""

from __future__ import annotations

import pytest
import torch
from helpers import make_classifier_folder, train_tiny

from genaug.bench import BenchConfig, read_runs, run_bench
from genaug.bench.plan.parts import condition_names
from genaug.bench.plan.recipes import parse_condition
from genaug.data import load_dataset
from genaug.errors import GenaugError
from genaug.fewshot import train_hallucinator
from genaug.models import list_generators

CONDITIONS = [
    "base:affine",
    "base:proto",
    "base:probe+affine",
    "base:proto@center=1,views=3+affine",
    "base:finetune@backbone=0.1,smoothing=0.1+affine",
    "base:affine+test_pairvae@weight=0.5,bn=separate,soft=0.1",
    "base:affine+test_pairvae@filter=1,cap=0.25",
    "base:probe@views=2+affine+test_pairvae",
    "base:proto+test_hallucinator@count=3,weight=0.5",
    "base:affine+test_hallucinator@count=2",
]


def tiny(zips, out, conditions, generator_data, **overrides) -> BenchConfig:
    values = dict(
        data=zips.spec("Tagalog"),
        image_size=16,
        ways=4,
        shots=[1],
        seeds=[0],
        model="test_resnet",
        steps=3,
        batch_size=8,
        conditions=conditions,
        generator_data=generator_data,
        generators={"test_pairvae": {"mode": "vary"}},
        pretrain_data=zips.spec("Greek"),
        pretrain_steps=6,
        pretrain_augment="none",
        hflip=False,
        device="cpu",
        out=str(out),
        progress=False,
        preview=0,
    )
    values.update(overrides)
    return BenchConfig(**values)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, omniglot_zips):
    root = tmp_path_factory.mktemp("learners")
    out = root / "bench"
    greek = load_dataset(omniglot_zips.spec("Greek"), image_size=16)
    # The base classifier first (the hallucinator learns its features), as the bench trains it.
    folder = make_classifier_folder(root / "base", greek, steps=6, batch_size=8)
    pairvae = train_tiny(root / "pairvae", "test_pairvae", omniglot_zips.spec("Greek"))
    hallucinator = train_hallucinator(
        folder,
        greek,
        root / "hallucinator",
        model="test_hallucinator",
        steps=2,
        batch_size=8,
        checkpoint_every=2,
        device="cpu",
        progress=False,
    ).checkpoint
    config = tiny(
        omniglot_zips,
        out,
        CONDITIONS,
        [f"checkpoint:{pairvae}", f"checkpoint:{hallucinator}"],
        pretrained_from=str(root / "base"),
        parts=[
            {"conditions": CONDITIONS[:5]},
            {"conditions": CONDITIONS[5:8], "generator_data": [f"checkpoint:{pairvae}"]},
            {"conditions": CONDITIONS[8:], "generator_data": [f"checkpoint:{hallucinator}"]},
        ],
    )
    result = run_bench(config, command="genaug bench (test)")
    return out, result


def test_every_learner_runs_paired_on_the_same_episode(finished):
    out, result = finished
    runs = read_runs(out / "runs.jsonl")
    assert len(runs) == len(CONDITIONS)
    fingerprints = {r["subset_fingerprint"] for r in runs.values()}
    assert len(fingerprints) == 1 and len({r["test_fingerprint"] for r in runs.values()}) == 1
    proto = runs["1|0|base:proto|-"]
    assert proto["learner"]["name"] == "proto" and proto["steps"] == 0
    assert proto["train_images"] == 4  # the 4 shots, no views: nothing augments them
    viewed = runs["1|0|base:proto@center=1,views=3+affine|-"]
    assert viewed["train_images"] == 4 * (1 + 3) and viewed["learner"]["center"] is True
    assert "learner" not in runs["1|0|base:affine|-"]  # old conditions' records unchanged
    gentle = runs["1|0|base:finetune@backbone=0.1,smoothing=0.1+affine|-"]
    assert gentle["learner"]["backbone"] == 0.1 and gentle["steps"] == 3
    assert gentle["learner"]["smoothing"] == 0.1
    hallucinated = next(r for k, r in runs.items() if "base:proto+test_hallucinator" in k)
    assert hallucinated["generated_features"] == 3 * 4 and hallucinated["kind"] == "generative"
    views = next(r for k, r in runs.items() if "base:probe@views=2" in k)
    assert views["train_images"] == 4 * 3 and views["kind"] == "classic+generative"
    for record in runs.values():
        assert 0.0 <= record["accuracy"] <= 1.0


def test_the_report_counts_heads_among_the_references(finished):
    out, result = finished
    entry = result.summary["shots"]["1"]["pipelines"]
    names = condition_names(CONDITIONS, list_generators())  # options in canonical order
    assert entry["without_generator"] in names[:5]
    assert entry["with_generator"] in [f"{c} [checkpoint]" for c in names[5:]]
    references = entry["references"]
    assert set(references["best"]) == {"finetune", "probe", "proto"}
    assert references["strongest"] == entry["without_generator"]
    report = (out / "summary.md").read_text()
    assert "## References without a generator" in report
    assert "linear probe" in report and "prototypes" in report


def test_gentle_fine_tune_keeps_the_head_faster_than_the_body():
    from genaug.bench.learn.classifier import create_classifier
    from genaug.bench.learn.loss import parameter_groups

    model = create_classifier("test_resnet", in_chans=1, num_classes=4, image_size=16, seed=0)
    groups = parameter_groups(model, 1e-3, 0.1)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    head = {id(p) for p in model.get_classifier().parameters()}
    assert {id(p) for p in groups[0]["params"]} == head
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(model.parameters()))


def test_separate_statistics_leave_running_ones_to_real_images():
    from genaug.bench.learn.classifier import create_classifier
    from genaug.bench.learn.loss import GeneratedTreatment, batch_loss

    model = create_classifier("test_resnet", in_chans=1, num_classes=4, image_size=16, seed=0)
    model.train()
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 4, (8,))
    generated = torch.tensor([False] * 4 + [True] * 4)
    x[4:] += 50.0  # generated images far off: they must not move the running statistics
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    separate = GeneratedTreatment(bn="separate")
    import contextlib

    batch_loss(model, x, y, generated, separate, None, contextlib.nullcontext).backward()
    running = bn.running_mean.clone()
    model2 = create_classifier("test_resnet", in_chans=1, num_classes=4, image_size=16, seed=0)
    model2.train()
    model2(x[:4])  # the real images alone
    bn2 = next(m for m in model2.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.allclose(running, bn2.running_mean, atol=1e-5)


def test_learner_conditions_parse_and_refuse():
    names = list_generators()
    recipe = parse_condition("probe@views=20,center=1+affine", names)
    assert recipe.name == "probe@center=1,views=20+affine" and recipe.kind == "classic"
    assert parse_condition("finetune", names).name == "none"  # the plain fine-tune
    with pytest.raises(GenaugError, match="proto learner takes"):
        parse_condition("proto@backbone=0.1", names)
    smoothed = parse_condition("finetune@smoothing=0.1+affine", names)
    assert smoothed.learner.smoothing == 0.1 and smoothed.name == "finetune@smoothing=0.1+affine"
    with pytest.raises(GenaugError, match="smoothing must lie in"):
        parse_condition("finetune@smoothing=1", names)
    with pytest.raises(GenaugError, match="backbone must lie in"):
        parse_condition("finetune@backbone=2", names)
    with pytest.raises(GenaugError, match="names two learners"):
        parse_condition("proto+probe", names)
    with pytest.raises(GenaugError, match="bn must be one of|unknown bn"):
        parse_condition("affine+vae@bn=twice", names)


def test_learners_need_the_base_classifier(tmp_path, omniglot_zips):
    with pytest.raises(GenaugError, match="write base:proto"):
        run_bench(tiny(omniglot_zips, tmp_path / "a", ["proto"], []))
    with pytest.raises(GenaugError, match="write base:"):
        run_bench(
            tiny(omniglot_zips, tmp_path / "b", ["test_hallucinator"], ["checkpoint:/nowhere"])
        )
