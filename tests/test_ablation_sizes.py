"""Sample counts before anything trains (mtl.ablation.sizes), on the tiny synthetic EMO-DB."""

from __future__ import annotations

from ablation_records import own_results  # noqa: F401  (autouse fixture)
from mtl.ablation import sizes
from mtl.config import get_profile
from mtl.cells import make_cell


def test_feature_key_config_keeps_only_what_changes_features_or_folds():
    config = get_profile("smoke", lr=0.5, generations=9, folds=3)
    key = sizes.feature_key_config(config)
    assert key.folds == 3 and key.synthetic_size == config.synthetic_size
    assert key.lr == get_profile("paper").lr and key.generations == get_profile("paper").generations
    assert sizes.feature_key_config(config.replace(lr=0.1)) == key


def test_fold_sizes_partition_the_corpus_and_the_mean_training_part_matches():
    config = get_profile("smoke")
    cell = make_cell("ablation", "scratch", "emodb", config=config, classes="target", data="synthetic")
    folds = sizes.outer_fold_sizes(cell)
    assert len(folds) == config.folds
    total = sum(test for _, test in folds)
    assert all(train + test == total for train, test in folds)
    assert sizes.mean_train_size("emodb", config, "synthetic") == round(total * (config.folds - 1) / config.folds)
