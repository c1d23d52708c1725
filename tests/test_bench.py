"""The benchmark harness on a tiny grid: pairing, resume, outputs, bad input, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genaug.bench.run.measure as measure_module
from genaug.bench import BenchConfig, read_runs, report_bench, run_bench
from genaug.bench.learn.classifier import check_model_name, create_classifier, macro_f1
from genaug.bench.learn.pipeline import build_pipeline, classic_transform
from genaug.bench.plan.recipes import parse_condition, split_conditions
from genaug.bench.report.markdown import format_markdown
from genaug.bench.report.summary import build_summary
from genaug.cli import main
from genaug.errors import GenaugError

GENERATORS = ["test_vae", "test_gan", "test_cgan"]
CONDITIONS = ["none", "flipcrop", "test_vae", "randaugment+test_vae", "more-real"]


def tiny_config(out: Path, **overrides) -> BenchConfig:
    values = dict(
        image_size=16,
        shots=[1],
        seeds=[0, 1],
        model="test_resnet",
        steps=3,
        batch_size=8,
        conditions=list(CONDITIONS),
        generator_data=["pool"],
        generators={"test_vae": {"steps": 4, "batch_size": 16}},
        device="cpu",
        out=str(out),
        progress=False,
        preview=4,
    )
    values.update(overrides)
    return BenchConfig(**values)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared CPU: a second thread only adds contention (10-30x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("bench") / "run"
    torch.manual_seed(0)
    result = run_bench(tiny_config(out), command="genaug bench (test)")
    return out, result


# ---------------------------------------------------------------------------- the grid
def test_every_run_is_recorded_once(finished):
    out, result = finished
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert result.ran == len(lines) == 2 * len(CONDITIONS)
    keys = [json.loads(line)["key"] for line in lines]
    assert len(set(keys)) == len(keys)


def test_pairing_same_subset_and_init_per_seed(finished):
    out, _ = finished
    records = list(read_runs(out / "runs.jsonl").values())
    for seed in (0, 1):
        mine = [r for r in records if r["seed"] == seed]
        assert len({r["subset_fingerprint"] for r in mine}) == 1
        assert len({r["init_fingerprint"] for r in mine}) == 1
        same_data = [r for r in mine if r["kind"] != "more-real"]
        assert len({r["train_fingerprint"] for r in same_data}) == 1
        more = next(r for r in mine if r["kind"] == "more-real")
        assert more["train_images"] == 2 * same_data[0]["train_images"] == 20
        assert more["train_fingerprint"] != same_data[0]["train_fingerprint"]
    by_seed = {r["seed"]: r for r in records if r["condition"] == "none"}
    assert by_seed[0]["subset_fingerprint"] != by_seed[1]["subset_fingerprint"]
    assert by_seed[0]["init_fingerprint"] != by_seed[1]["init_fingerprint"]


def test_generators_are_trained_once_per_seed_and_source(finished):
    out, _ = finished
    folders = sorted(p.name for p in (out / "generators").iterdir())
    assert folders == ["test_vae-pool-seed0", "test_vae-pool-seed1"]
    record = next(r for r in read_runs(out / "runs.jsonl").values() if r["generator"])
    assert record["generator"]["images"] > 1000  # pool: every training image, labels hidden
    assert record["source"] == "pool"


def test_the_accuracy_plot_clips_its_intervals_to_0_100(finished, tmp_path, monkeypatch):
    import copy

    import matplotlib.axes

    from genaug.bench.report.figures import error_extents, plot_accuracy, plot_gain

    out, _ = finished
    summary = copy.deepcopy(json.loads((out / "summary.json").read_text()))
    rows = summary["shots"]["1"]["conditions"]
    rows[0]["accuracy"].update(mean=0.97, low=0.9, high=1.04)  # 3 seeds near 100 %
    rows[1]["accuracy"].update(mean=0.02, low=-0.03, high=0.1)
    drawn = []
    real_barh = matplotlib.axes.Axes.barh
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "barh",
        lambda ax, y, width, **kw: drawn.append((width, kw["xerr"])) or real_barh(ax, y, width),
    )
    plot_accuracy(summary, tmp_path / "accuracy.png")
    (means, (below, above)) = drawn[-1]
    ends = [(m - b, m + a) for m, b, a in zip(means, below, above)]
    assert ends[0] == pytest.approx((90.0, 100.0)) and ends[1] == pytest.approx((0.0, 10.0))
    assert all(0.0 <= low <= high <= 100.0 for low, high in ends)
    plot_gain(summary, tmp_path / "gain.png")  # a paired gain is signed: never clipped at 0
    assert error_extents(-1.0, -3.0, 2.0) == (2.0, 3.0)
    assert error_extents(97.0, 90.0, 104.0, (0.0, 100.0)) == pytest.approx((7.0, 3.0))


def test_outputs_are_written_and_parse(finished):
    out, result = finished
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["runs_found"] == 10
    rows = summary["shots"]["1"]["conditions"]
    assert [r["arm"] for r in rows] == [
        "none",
        "flipcrop",
        "test_vae [pool]",
        "randaugment+test_vae [pool]",
        "more-real",
    ]
    assert summary["shots"]["1"]["best_classic"] == "flipcrop"
    for row in rows:
        assert row["n"] == 2 and 0.0 <= row["accuracy"]["mean"] <= 1.0
        assert row["augment_ms_per_step"] >= 0 and row["train_seconds"] > 0
    assert rows[0]["vs_none"] is None and rows[1]["vs_best_classic"] is None
    assert rows[2]["vs_best_classic"]["n"] == 2
    assert summary["targets"][0]["source"] == "pool"
    markdown = (out / "summary.md").read_text()
    assert "| condition | generator data |" in markdown and "## Targets" in markdown
    assert "Δ vs real images" not in markdown  # no neighbour walk: no real-images lines
    assert "- Generator data: `pool` = every training image" in markdown
    assert "`labeled` =" not in markdown  # only the sources this bench used are explained
    assert "genaug bench (test)" in markdown
    for name in ("accuracy.png", "gain.png", "augmented.png"):
        with Image.open(out / name) as image:
            assert image.size[0] > 100 and image.size[1] > 100
    assert set(result.files) >= {"summary_json", "summary_md", "accuracy_png", "gain_png"}


# ---------------------------------------------------------------------------- resume
def test_conditions_that_output_real_images_only_are_reported_apart(finished):
    # A whole guided walk with all the detail outputs the real pool image it reached: the
    # targets table gives it its own line, never mixing it with generated-pixel conditions.
    out, _ = finished
    config = json.loads((out / "summary.json").read_text())["config"]
    walk = {"mode": "neighbour", "strength": 1.0, "detail": 1.0, "walk": "partway"}
    arms = {
        "randaugment": (None, [0.70, 0.72, 0.74]),
        "randaugment+vae@walk [pool]": (walk, [0.73, 0.76, 0.78]),
        "randaugment+vae@whole [pool]": ({**walk, "walk": "whole"}, [0.80, 0.81, 0.84]),
    }
    records = [
        {
            "shots": 1,
            "seed": seed,
            "arm": arm,
            "kind": "classic+generative" if generative else "classic",
            "generative": generative,
            "accuracy": accuracy[seed],
            "macro_f1": accuracy[seed],
            "augment_ms_per_step": 1.0,
            "train_seconds": 1.0,
            "train_images": 10,
            "generator": None,
        }
        for arm, (generative, accuracy) in arms.items()
        for seed in range(3)
    ]
    listed = [
        {"arm": arm, "condition": arm.partition(" ")[0], "source": "pool" if g else None}
        for arm, (g, _) in arms.items()
    ]
    listed += [  # listed in the grid, never run: named under the table, by generator data
        {
            "arm": "randaugment+vae@walk [labeled]",
            "condition": "randaugment+vae@walk",
            "source": "labeled",
        },
        {"arm": "affine", "condition": "affine", "source": None},
    ]
    summary = build_summary({**config, "shots": [1], "seeds": [0, 1, 2]}, listed, records, 9)
    targets = {t["output"]: t["best_classic_plus_generative"] for t in summary["targets"]}
    assert targets == {
        "generated": "randaugment+vae@walk [pool]",
        "real images": "randaugment+vae@whole [pool]",
    }
    generated, real = sorted(summary["targets"], key=lambda t: t["output"])
    # The generated line is compared with the real images: 0.73/0.76/0.78 vs 0.80/0.81/0.84.
    assert generated["real_images_reference"] == "randaugment+vae@whole [pool]"
    assert generated["vs_real_images"]["mean_difference"] == pytest.approx(-0.06)
    assert real["vs_real_images"] is None
    markdown = format_markdown(summary)
    assert "Δ vs real images" in markdown and "| -6.0 [" in markdown
    assert (
        "Not run at this shot count - generator data labeled: randaugment+vae@walk; "
        "no generator: affine." in markdown
    )
    assert "randaugment+vae@whole (real images only)" in markdown
    assert "randaugment+vae@walk (real images only)" not in markdown


def test_interrupted_bench_resumes_without_repeating_runs(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = tiny_config(out, conditions=["none", "flipcrop", "affine"], preview=0)
    calls = []
    real = measure_module.train_classifier

    def interrupted_after_four(*args, **kwargs):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(kwargs["init_seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(measure_module, "train_classifier", interrupted_after_four)
    with pytest.raises(KeyboardInterrupt):
        run_bench(config)
    assert len(read_runs(out / "runs.jsonl")) == 4
    with open(out / "runs.jsonl", "a") as f:  # a line torn by a crash is ignored
        f.write('{"key": "1|1|affine|-", "accu')

    monkeypatch.setattr(measure_module, "train_classifier", real)
    with pytest.raises(GenaugError, match="--resume"):
        run_bench(config)  # neither --resume nor --overwrite: refused, nothing lost
    config.resume = True
    result = run_bench(config)
    assert (result.reused, result.ran) == (4, 2)
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert sum(1 for line in lines if line.endswith("}")) == 6
    assert len(read_runs(out / "runs.jsonl")) == 6
    again = run_bench(config)  # everything finished: nothing runs
    assert (again.reused, again.ran) == (6, 0)


def test_resume_refuses_other_settings_and_overwrite_replaces(tmp_path):
    out = tmp_path / "run"
    run_bench(tiny_config(out, conditions=["none"], seeds=[0], preview=0))
    changed = tiny_config(out, conditions=["none"], seeds=[0], steps=4, resume=True, preview=0)
    with pytest.raises(GenaugError, match=r"different settings \(steps\)"):
        run_bench(changed)
    assert len(read_runs(out / "runs.jsonl")) == 1  # nothing lost
    changed.overwrite = True
    assert run_bench(changed).ran == 1
    grown = tiny_config(out, conditions=["none", "affine"], seeds=[0], steps=4, resume=True)
    grown.preview = 0
    assert (run_bench(grown).ran, run_bench(grown).reused) == (1, 2)  # a grid may grow


def test_report_only_of_a_partial_grid(finished, tmp_path):
    out, _ = finished
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "bench_config.json").write_text((out / "bench_config.json").read_text())
    lines = (out / "runs.jsonl").read_text().splitlines()[:3]
    (partial / "runs.jsonl").write_text("\n".join(lines) + "\n")
    result = report_bench(partial)
    assert not result.summary["complete"] and result.summary["runs_found"] == 3
    assert "Partial results: 3 of 10 runs" in (partial / "summary.md").read_text()


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"shots": [500]}, "class '0' has only"),
        ({"shots": [100]}, "the more-real reference needs 2 x 100 = 200"),
        ({"model": "resnet10"}, "did you mean"),
        ({"model": "test_convnext"}, "cannot take 1x16x16 images"),
        ({"conditions": ["none", "randaugmnet"]}, "Did you mean randaugment"),
        ({"conditions": ["test_gan"]}, "cannot run with generator data pool"),
        ({"conditions": ["vae"], "image_size": 24}, "cannot be trained at 24 px"),
        ({"conditions": ["none", "none"]}, "listed twice"),
        ({"generator_data": ["everything"]}, "unknown generator data"),
        ({"generators": {"test_vae": {"jitter": 2.0}}}, "jitter must lie in"),
        ({"generators": {"test_vae": {"walk": "far"}}}, "walk must be one of partway, whole"),
    ],
)
def test_bad_input_is_one_sentence_before_any_run(tmp_path, overrides, match):
    out = tmp_path / "run"
    with pytest.raises(GenaugError, match=match):
        run_bench(tiny_config(out, **overrides))
    assert not out.exists()


def test_a_family_that_cannot_use_a_source_is_skipped_and_reported(tmp_path):
    config = tiny_config(
        tmp_path / "run",
        seeds=[0],
        conditions=["none", "test_gan"],
        generator_data=["labeled", "pool"],
        generators={"test_gan": {"steps": 2, "batch_size": 8}},
        preview=0,
    )
    result = run_bench(config)
    assert [r["arm"] for r in result.summary["shots"]["1"]["conditions"]] == [
        "none",
        "test_gan [labeled]",
    ]
    assert result.summary["skipped"][0]["arm"] == "test_gan [pool]"
    assert "Not run: test_gan [pool]" in (tmp_path / "run" / "summary.md").read_text()


def test_named_generator_variants_train_their_own_generator(tmp_path):
    config = tiny_config(
        tmp_path / "run",
        seeds=[0],
        conditions=["test_vae", "tiny_latent@strength=0.3"],
        generators={
            "test_vae": {"steps": 2, "batch_size": 8},
            "tiny_latent": {"model": "test_vae", "steps": 2, "model_args": {"latent_dim": 2}},
        },
        preview=0,
    )
    result = run_bench(config)
    assert result.ran == 2
    folders = sorted(p.name for p in (tmp_path / "run" / "generators").iterdir())
    assert folders == ["test_vae-pool-seed0", "tiny_latent-pool-seed0"]


def test_a_cached_generator_trained_otherwise_is_never_reused(tmp_path):
    # A bench refuses changed generator settings itself; a generator folder copied in from
    # another bench (to save its training) is checked against the run's settings as well.
    def config(out: str, conditions: list[str], **settings):
        generator = {"steps": 2, "batch_size": 8, **settings}
        values = dict(seeds=[0], conditions=conditions, preview=0, resume=True)
        return tiny_config(tmp_path / out, generators={"test_vae": generator}, **values)

    run_bench(config("plain", ["test_vae"]))
    shifted = config("shifted", ["none"], train_augment="translation")
    run_bench(shifted)
    shutil.copytree(tmp_path / "plain" / "generators", tmp_path / "shifted" / "generators")
    shifted.conditions = ["none", "test_vae"]
    with pytest.raises(GenaugError, match=r"trained with other settings \(augment\)"):
        run_bench(shifted)
    with pytest.raises(GenaugError, match="train_augment"):
        config("x", ["none"], train_augment=3).validate()


@pytest.mark.parametrize("source", ["pool", "labeled"])
def test_neighbour_mode_walks_toward_the_generators_training_images(tmp_path, source):
    config = tiny_config(
        tmp_path / "run",
        seeds=[0],
        shots=[2],
        conditions=["test_vae@mode=neighbour,p=1.0", "flipcrop+test_vae@mode=neighbour"],
        generator_data=[source],
        preview=2,
    )
    result = run_bench(config)
    assert result.ran == 2
    records = list(read_runs(tmp_path / "run" / "runs.jsonl").values())
    assert {r["generative"]["mode"] for r in records} == {"neighbour"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in records)


def test_a_folder_that_is_not_a_bench_is_left_alone(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(GenaugError, match="not a genaug bench"):
        run_bench(tiny_config(tmp_path, overwrite=True))
    assert (tmp_path / "mine.txt").read_text() == "precious"


# ---------------------------------------------------------------------------- pieces
def test_conditions_parse_to_canonical_recipes():
    names = ["vae", "gan", "test_vae"]
    recipe = parse_condition("RandAugment + vae@strength=0.8,p=0.25", names, {"vae": {"p": 0.5}})
    assert recipe.name == "randaugment+vae@p=0.25,strength=0.8"
    assert recipe.kind == "classic+generative" and recipe.classic == ("randaugment",)
    assert (recipe.generative.p, recipe.generative.strength) == (0.25, 0.8)
    assert parse_condition("more-real+affine", names).kind == "more-real"
    assert parse_condition("none", names).kind == "none"
    walk = parse_condition("vae@mode=neighbour,k=20", names).generative
    assert (walk.mode, walk.k) == ("neighbour", 20)
    bad_conditions = ("vae+gan", "none+affine", "more-real+vae", "affine@p=1", "vae@p=2")
    for bad in (*bad_conditions, "vae@x=1", "vae@k=0", "vae@k=two"):
        with pytest.raises(GenaugError):
            parse_condition(bad, names)


def test_condition_lists_keep_inline_options_together():
    text = "none, vae@p=0.3,strength=0.8,randaugment+vae@order=classic-first,affine"
    assert split_conditions(text) == [
        "none",
        "vae@p=0.3,strength=0.8",
        "randaugment+vae@order=classic-first",
        "affine",
    ]


def test_classic_pipeline_keeps_shape_dtype_and_labels():
    images = (torch.rand(6, 1, 16, 16) * 255).to(torch.uint8)
    labels = torch.arange(6)
    for name in ("flipcrop", "affine", "trivialaugment", "randaugment"):
        pipeline = build_pipeline(parse_condition(name, []), 16)
        out, out_labels = pipeline(images, labels)
        assert out.shape == images.shape and out.dtype == torch.uint8
        assert out_labels is labels
    assert build_pipeline(parse_condition("none", []), 16) is None


def test_flipcrop_never_flips_digits():
    no_flip = classic_transform("flipcrop", 16, allow_flip=False)
    assert "HorizontalFlip" not in repr(no_flip)
    assert "HorizontalFlip" in repr(classic_transform("flipcrop", 16, allow_flip=True))
    assert BenchConfig(data="digits").allow_flip() is False
    assert BenchConfig(data="cifar10:/data").allow_flip() is True


def test_paired_init_and_unknown_names():
    a = create_classifier("test_resnet", in_chans=1, num_classes=10, image_size=16, seed=3)
    b = create_classifier("test_resnet", in_chans=1, num_classes=10, image_size=16, seed=3)
    for (_, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y)
    with pytest.raises(GenaugError, match="resnet10t"):
        check_model_name("resnet10tt")


def test_macro_f1_matches_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    expected = f1_score(y, p, average="macro")
    assert macro_f1(torch.from_numpy(p), torch.from_numpy(y), 5) == pytest.approx(expected)


# ---------------------------------------------------------------------------- the CLI
def test_cli_bench_runs_and_refuses_bad_input(tmp_path, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text(
        "image_size: 16\nmodel: test_resnet\nsteps: 2\nbatch_size: 8\ndevice: cpu\npreview: 0\n"
    )
    out = tmp_path / "run"
    argv = ["bench", "--config", str(config), "--out", str(out), "--no-progress"]
    status = main([*argv, "--shots", "1", "--seeds", "2", "--conditions", "none,affine"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "| none | - | 2 |" in captured.out and "summary.json" in captured.out
    assert "--shots 1" in (out / "summary.md").read_text()

    status = main([*argv, "--shots", "1", "--seeds", "2", "--steps", "3", "--resume"])
    captured = capsys.readouterr()
    assert status == 2 and "different settings (steps)" in captured.err
    assert "Traceback" not in captured.err
    status = main([*argv, "--shots", "1,x"])
    assert status == 2 and "comma-separated list" in capsys.readouterr().err
    status = main(["bench", "--report-only", "--out", str(out)])
    assert status == 0 and "| none | - | 2 |" in capsys.readouterr().out


def test_local_pretrained_weights_load_without_network_or_unpickling(tmp_path):
    from safetensors.torch import save_file

    source = create_classifier("test_resnet", in_chans=1, num_classes=10, image_size=16, seed=5)
    weights = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(weights, str(tmp_path / "w.safetensors"))
    torch.save(weights, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = create_classifier(
            "test_resnet",
            in_chans=1,
            num_classes=10,
            image_size=16,
            seed=9,
            pretrained_file=str(tmp_path / name),
        )
        head = loaded.pretrained_cfg[
            "classifier"
        ]  # timm re-initialises the head, as fine-tuning does
        body = {k: v for k, v in loaded.state_dict().items() if not k.startswith(head + ".")}
        assert len(body) > 10
        for key, value in body.items():
            torch.testing.assert_close(value, weights[key])
    torch.save({"state_dict": weights, "extra": Path("x")}, tmp_path / "pickled.pth")
    with pytest.raises(GenaugError, match="timm could not create"):
        create_classifier(
            "test_resnet",
            in_chans=1,
            num_classes=10,
            image_size=16,
            pretrained_file=str(tmp_path / "pickled.pth"),
        )
    with pytest.raises(GenaugError, match="does not exist"):
        create_classifier(
            "test_resnet",
            in_chans=1,
            num_classes=10,
            image_size=16,
            pretrained_file=str(tmp_path / "missing.pth"),
        )
