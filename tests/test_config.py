import json
from pathlib import Path

import pytest

from mtl.config import PAPER, PROFILES, Config, get_profile
from mtl.errors import ConfigError


def test_paper_defaults_are_the_papers_settings():
    c = Config()
    assert (c.n_layers, c.n_modules, c.units, c.max_active) == (3, 20, 20, 4)
    assert (c.population, c.tournament, c.generations) == (20, 2, 200)
    assert (c.lr, c.batch_size, c.folds, c.protocol) == (0.02, 64, 5, "paper")
    assert c.input_dim == 64 * 64 * 3
    assert c.per_gene_mutation_rate == pytest.approx(1 / 12)
    assert c.segment_hop == 34


def test_profiles_derive_from_the_paper_config():
    assert set(PROFILES) == {"paper", "default", "classroom", "smoke"}
    assert get_profile("paper").differences_from_paper() == {}
    smoke = get_profile("smoke")
    assert smoke.generations < PAPER.generations
    assert get_profile("smoke", seed=3).seed == 3


def test_classroom_profile_is_smaller_than_default_on_full_corpora():
    classroom, default = get_profile("classroom"), get_profile("default")
    assert classroom.synthetic_size == "full"  # tiny corpora are too small to show any effect
    assert classroom.generations < default.generations and classroom.folds < default.folds
    assert classroom.steps_per_pathway is not None and classroom.frame_step >= default.frame_step
    assert classroom.eval_every == 1  # a learning-curve point every generation
    assert set(classroom.differences_from_paper()) == {"generations", "folds", "steps_per_pathway", "frame_step",
                                                       "checkpoint_every", "eval_every", "lr", "workers"}


def test_classroom_learning_rate_is_the_one_chosen_on_inner_folds():
    """The profile's lr is the committed selection's choice, made at the profile's own budget."""
    selection = json.loads((Path(__file__).resolve().parents[1] / "results" / "classroom-selection.json").read_text())
    classroom, scores = get_profile("classroom"), selection["mean_inner_accuracy"]
    assert float(max(scores, key=scores.get)) == selection["chosen_lr"] == classroom.lr
    assert {key: getattr(classroom, key) for key in selection["budget"]} == selection["budget"]
    assert all(run["outer_fold"] == 0 for run in selection["runs"])  # chosen on fold 0's training part only


def test_steps_for_one_pass_and_literal_epochs():
    assert Config().steps_for(640) == 10
    assert Config().steps_for(641) == 11
    assert Config(training_budget="literal_epochs").steps_for(640) == 100
    assert Config(steps_per_pathway=7).steps_for(640) == 7
    with pytest.raises(ConfigError, match="empty"):
        Config().steps_for(0)


@pytest.mark.parametrize("changes, word", [
    (dict(max_active=21), "max_active"),
    (dict(n_layers=0), "n_layers"),
    (dict(protocol="random"), "protocol"),
    (dict(boundary="bounce"), "boundary"),
    (dict(tournament=30), "tournament"),
])
def test_bad_parameters_name_themselves(changes, word):
    with pytest.raises(ConfigError, match=word):
        Config(**changes)


def test_unknown_profile_and_parameter():
    with pytest.raises(ConfigError, match="unknown profile"):
        get_profile("fast")
    with pytest.raises(ConfigError, match="unknown Config parameter"):
        get_profile("paper", gens=3)


def test_round_trip_dict():
    c = get_profile("smoke")
    assert Config.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("changes, message", [
    (dict(generations=True), "generations (G) must be an integer, got True (bool)"),  # not G=1
    (dict(generations=1.5), "generations (G) must be an integer, got 1.5 (float)"),
    (dict(generations="abc"), "generations (G) must be an integer, got 'abc' (str)"),  # not a raw TypeError
    (dict(lr=float("nan")), "lr must be a finite number, got nan"),
    (dict(lr=True), "lr must be a finite number, got True"),
    (dict(steps_per_pathway=3.0), "steps_per_pathway (T) must be an integer or None, got 3.0"),
    (dict(frozen_counts_toward_n=1), "frozen_counts_toward_n must be true or false, got 1"),
    (dict(input_shape="abc"), "input_shape must be 3 integers"),
    (dict(input_shape=[64, 64.5, 3]), "input_shape must be 3 integers"),
    (dict(seed=-1), "seed must be between 0 and 2**32 - 1"),
    (dict(seed=2**32), "seed must be between 0 and 2**32 - 1"),
])
def test_every_value_is_type_checked_before_its_range(changes, message):
    with pytest.raises(ConfigError) as error:
        get_profile("smoke", **changes)
    assert message in str(error.value)


def test_type_check_keeps_the_values_it_accepts():
    import numpy as np

    assert get_profile("paper", lr=1).lr == 1  # an int is a number; kept as given, so keys do not move
    assert get_profile("paper", generations=np.int64(5)).generations == 5
    assert get_profile("paper", input_shape=[32, 32, 3]).input_shape == (32, 32, 3)
    assert get_profile("paper", steps_per_pathway=None, mutation_rate=None).steps_per_pathway is None


def test_check_types_names_the_parameter_as_given_and_skips_other_names():
    from mtl.config import check_type, check_types

    with pytest.raises(ConfigError, match=r"^G \(generations\) must be an integer, got True \(bool\)$"):
        check_type("G", True)
    check_types({"seeds": [0, "x"], "corpora": None, "G": 20, "lr": 0.01})  # seeds: a notebook's own
    with pytest.raises(ConfigError, match="lr must be a finite number"):
        check_types({"seeds": [0], "lr": "fast"})
