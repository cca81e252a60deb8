"""The ``device`` setting: validated, result-neutral, one placement helper, CPU results unchanged.

Every test here runs the device code path on the CPU (``device="auto"`` on a
machine without CUDA is the CPU). Tests marked ``cuda`` need a GPU and skip,
with the reason, without one; ``benchmarks/gpu_check.sh`` runs them on a GPU
machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl.cells import make_cell
from mtl.config import Config, get_profile
from mtl.errors import ConfigError
from mtl.pathnet import PathNet, evolve
from mtl.pathnet.checks import as_features, describe_device, torch_device
from mtl.runner import run

HAS_CUDA = torch.cuda.is_available()


def cuda(test):
    """Mark ``test`` as one for a GPU (``pytest -m cuda``), skipped with the reason without one."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU "
                                               "(torch.cuda.is_available() is False)")(test))


no_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks what 'auto' and 'cuda' do on a machine without a GPU")
SMALL = dict(input_shape=(8, 8, 3), n_modules=6, units=8, max_active=2, population=4, generations=4,
             steps_per_pathway=3, checkpoint_every=2, eval_every=2, seed=7)


def toy_task(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (rng.normal(size=(3, 192))[y] + rng.normal(size=(n, 192))).astype(np.float32), y


def evolved(module_type: str, device: str) -> tuple[PathNet, object]:
    config = get_profile("smoke", **SMALL, module_type=module_type, device=device)
    net = PathNet(config)
    net.add_head("task", 3)
    X, y = toy_task()
    return net, evolve(net, X, y, config)


def test_device_is_validated_and_defaults_to_the_cpu():
    assert Config().device == "cpu" and torch_device(Config()) == torch.device("cpu")
    with pytest.raises(ConfigError, match="device must be one of"):
        Config(device="gpu")
    with pytest.raises(ConfigError, match="device"):
        Config(device=0)


@no_cuda
def test_cuda_without_a_gpu_is_a_clear_config_error():
    config = Config(device="cuda")  # a valid setting: records made on a GPU are read on any machine
    with pytest.raises(ConfigError, match="finds no CUDA GPU"):
        PathNet(config)
    assert torch_device(Config(device="auto")) == torch.device("cpu")


def test_the_device_changes_no_key():
    cells = [make_cell("unit", "scratch", "savee", (), "audio", get_profile("smoke", device=device), data="synthetic")
             for device in ("cpu", "cuda", "auto")]
    assert len({cell.key for cell in cells}) == 1


@no_cuda
@pytest.mark.parametrize("module_type", ["linear", "conv"])
def test_auto_without_a_gpu_gives_the_cpu_results_bitwise(module_type):
    (net_cpu, cpu), (net_auto, auto) = evolved(module_type, "cpu"), evolved(module_type, "auto")
    assert cpu.history.to_list()[-1]["best_genotype"] == auto.history.to_list()[-1]["best_genotype"]
    assert [r["fitness"] for r in cpu.history] == [r["fitness"] for r in auto.history]
    for name, tensor in net_cpu.state_dict().items():
        assert torch.equal(tensor, net_auto.state_dict()[name]), name


def test_features_are_placed_by_the_one_helper():
    X = as_features(np.zeros((4, 8, 8, 3), np.float32), Config(input_shape=(8, 8, 3), device="auto"))
    assert X.device == torch_device(Config(device="auto")) and X.shape == (4, 192)
    assert describe_device(torch.device("cpu")) == "cpu"


def test_a_record_says_where_it_ran_and_keeps_the_device_out_of_its_config(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-data"))
    cell = make_cell("unit", "scratch", "savee", (), "audio", get_profile("smoke", device="auto"), data="synthetic")
    record = run(cell)
    assert record["timings"]["device"] == describe_device(torch_device(cell.config))
    assert record["timings"]["source_device"] is None  # scratch: no source model
    assert "device" not in record["config"]


@cuda
@pytest.mark.parametrize("module_type", ["linear", "conv"])
def test_a_cuda_session_matches_the_cpu_session_to_rounding(module_type):
    config = get_profile("smoke", **SMALL, module_type=module_type)
    net_cpu = PathNet(config)
    net_cpu.add_head("task", 3)
    net_gpu = net_cpu.copy().to_config_device(config.replace(device="cuda"))
    assert describe_device(net_gpu.device).startswith("cuda:")
    X, y = toy_task(64)
    genotype = np.array([[0, 1], [2, 3], [4, 5]])
    for net in (net_cpu, net_gpu):
        features = as_features(X, net.config)
        with net.session(genotype, "task", lr=0.05, momentum=0.9) as session:
            for _ in range(3):
                session.step(features, torch.as_tensor(y).to(net.device))
    for name, tensor in net_cpu.state_dict().items():
        torch.testing.assert_close(net_gpu.state_dict()[name].cpu(), tensor, rtol=1e-4, atol=1e-5, msg=name)
    gpu = evolved(module_type, "cuda")[1]
    assert gpu.history[0]["picked"] == evolved(module_type, "cpu")[1].history[0]["picked"]  # the GA's own stream


@cuda
def test_cuda_transfer_keeps_the_frozen_pathway_bitwise():
    from mtl.pathnet import PathNetClassifier, train_source

    config = get_profile("smoke", **SMALL, module_type="conv", device="cuda", momentum=0.9, weight_decay=1e-3)
    X, y = toy_task()
    source = train_source(X, y, config)
    clf = PathNetClassifier(config, method="transfer", source=source).fit(*toy_task(seed=1))
    for layer, kept in enumerate(clf.frozen_):
        assert torch.equal(clf.net_.weight(layer)[kept], source.net.weight(layer)[kept])
    assert clf.predict(X).shape == (len(X),)
