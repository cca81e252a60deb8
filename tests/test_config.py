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
                                                       "checkpoint_every", "eval_every"}


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
