"""The settings bullets of a bench report: the seeds (or episodes), the classifier, the test
set, the generator data, and how to read the tables."""

from __future__ import annotations

from typing import Any

__all__ = ["episode_bullet", "protocol_bullets", "test_bullet"]

_SOURCES = {
    "labeled": "`labeled` = the k-shot images with their labels only",
    "pool": "`pool` = every training image with its label hidden (the semi-supervised setting: "
    "the pool's labels are never used)",
    "checkpoint": "`checkpoint` = a generator trained beforehand, given by its folder",
}


def _sources_bullet(config: dict[str, Any]) -> str:
    """What each generator source of this bench means (only the sources it names)."""
    named = [str(s).split(":", 1)[0] for s in config.get("generator_data") or []]
    parts = [_SOURCES[s] for s in _SOURCES if s in named]
    return f"- Generator data: {'; '.join(parts)}." if parts else "- No generator data."


def protocol_bullets(config: dict[str, Any]) -> list[str]:
    """The report's bullets on how the grid was measured (a blank line after them)."""
    seeds = config["seeds"]
    unit = "episodes" if config.get("ways") else "seeds"  # the episodic protocol's seeds
    return [
        episode_bullet(config)
        if config.get("ways")
        else f"- {len(seeds)} seeds ({', '.join(map(str, seeds))}); each seed draws its own "
        "k-shot subset, classifier initialisation and generator; all conditions of a seed share "
        "the subset, the initial weights and the batch order (paired design).",
        f"- Classifier: timm `{config['model']}` "
        f"({'weights from ' + config['pretrained_file'] if config['pretrained_file'] else 'from scratch'}), "
        f"{config['image_size']} px, {config['steps']} steps of batch {config['batch_size']}, "
        f"{'fused ' if config.get('fused_adamw') else ''}AdamW (lr {config['lr']}, "
        f"weight decay {config['weight_decay']}) with a one-cycle "
        "schedule, the same for every condition.",
        test_bullet(config)
        if config.get("ways")
        else f"- Test set: a fixed real {config['test_fraction']:.0%} of every class "
        f"(test seed {config['test_seed']}), the same for every seed and condition.",
        _sources_bullet(config),
        f"- Accuracy: mean over {unit} [95% t-interval, clipped to 0-100], in %. Δ: paired mean difference in "
        "percentage points [95% interval]; p: two-sided paired t-test / Wilcoxon signed-rank. "
        "The best classic condition is chosen per shot count after the fact (the strongest "
        "baseline, so the comparison is never against a weak one). Error cut: the share of the "
        "best classic condition's errors removed.",
        "- Cost: augmentation ms per step and classifier training seconds per run (mean); "
        "generator s: the one-off training of the generator a run used (mean per generator).",
        "",
    ]


def episode_bullet(config: dict[str, Any]) -> str:
    """The protocol line of an episodic bench."""
    seeds = config["seeds"]
    return (
        f"- {len(seeds)} episodes ({', '.join(map(str, seeds))}) of {config['ways']} ways drawn "
        f"from {config['data']} (episode stream seed {config['test_seed']}); an episode draws "
        "its classes and their shots (labels 0..ways-1), and every condition of an episode "
        "shares the classes, the shots, the test images, the classifier's initial weights and "
        "the batch order (paired design); shots are nested (the 1-shot image is among the 5)."
    )


def test_bullet(config: dict[str, Any]) -> str:
    """The test-set line of an episodic bench."""
    base = ""
    if config.get("pretrain_data"):
        lr = config.get("finetune_lr") or config["lr"]
        base = (
            f" `base:` conditions fine-tune (lr {lr}, same steps) a classifier pretrained on "
            f"every class of {config['pretrain_data']} ({config['pretrain_steps']} steps, "
            f"augmentation {config['pretrain_augment']}"
            + (
                f" with the generator {config['pretrain_generator']}"
                if config.get("pretrain_generator")
                else ""
            )
            + "; saved in pretrained/base-classifier/ "
            "with its settings), with a new head."
        )
    return (
        f"- Test set: the last {config['queries']} images of each episode class in a fixed "
        "per-class order, the same at every shot count and for every condition, the more-real "
        f"reference included ({config['more_real_factor']} x the shots, taken from the "
        f"images before them).{base}"
    )
