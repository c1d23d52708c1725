"""Publishing a bench (genaug/bench/report/publish.py, ``genaug bench --publish NAME``) and
joining bench folders before it (genaug/bench/run/merge.py, ``--merge-from``)."""

from __future__ import annotations

import json

import pytest
from helpers import single_thread  # noqa: F401 (one torch thread in this module)

from genaug.bench import merge_benches, read_runs
from genaug.cli import main
from genaug.errors import GenaugError

GRID = (
    "data: digits\nimage_size: 16\nmodel: test_resnet\nsteps: 2\nbatch_size: 8\ndevice: cpu\n"
    "preview: 0\nprogress: false\nseeds: [0, 1]\nconditions: [none, affine]\nshots: [1, 2]\n"
)


@pytest.fixture()
def grid(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    return path


def _bench(grid, out, *flags: str) -> int:
    return main(["bench", "--config", str(grid), "--out", str(out), *flags])


def test_a_grid_published_after_it_runs_and_again_from_its_folder(tmp_path, grid, capsys):
    results, out = tmp_path / "results", tmp_path / "bench"
    assert _bench(grid, out, "--shots", "1", "--publish", "tiny", "--results", str(results)) == 0
    assert "published" in capsys.readouterr().out
    names = sorted(p.name for p in results.iterdir())
    assert names == [
        "tiny.json",
        "tiny.md",
        "tiny_accuracy.png",
        "tiny_gain.png",
        "tiny_runs.jsonl",
    ]
    markdown = (results / "tiny.md").read_text()
    assert markdown.startswith("# genaug bench: digits, timm test_resnet\n\n**Scope.**")
    assert f"The full published grid is `{grid}`: shots [1, 2], 2 seeds" in markdown
    assert "ran only a part of it: shots [1]" in markdown and "Not run: shot counts 2." in markdown
    assert f"Command:\n\n    genaug bench --config {grid} --out {out} --shots 1" in markdown
    assert (results / "tiny.json").read_bytes() == (out / "summary.json").read_bytes()
    assert (results / "tiny_runs.jsonl").read_bytes() == (out / "runs.jsonl").read_bytes()

    again = ["--report-only", "--publish", "tiny", "--results", str(results), "--note", "A test."]
    assert _bench(grid, out, *again) == 0
    first = {p.name: p.read_bytes() for p in results.iterdir()}
    assert "\n**How it ran.** A test.\n" in first["tiny.md"].decode()
    assert _bench(grid, out, *again) == 0  # a re-publication writes the same files
    assert {p.name: p.read_bytes() for p in results.iterdir()} == first


def test_parts_run_apart_join_one_folder_before_the_publication(tmp_path, grid, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _bench(grid, one, "--shots", "1") == 0
    assert _bench(grid, two, "--shots", "2", "--seeds", "0,1") == 0
    results = tmp_path / "results"
    publish = ["--report-only", "--merge-from", str(two), "--publish", "both"]
    assert _bench(grid, one, *publish, "--results", str(results)) == 0
    runs = read_runs(one / "runs.jsonl")
    assert len(runs) == 8 and runs.keys() >= read_runs(two / "runs.jsonl").keys()
    assert json.loads((one / "bench_config.json").read_text())["shots"] == [1, 2]
    assert "This publication ran all of it." in (results / "both.md").read_text()
    assert merge_benches(one, [two], grid) == 0  # nothing new the second time

    other = tmp_path / "other"
    assert _bench(grid, other, "--shots", "2", "--steps", "3") == 0
    with pytest.raises(GenaugError, match=r"other settings \(steps\)"):
        merge_benches(one, [other])
    capsys.readouterr()
