"""PathNet: batched forward = per-module reference, sessions = autograd SGD, freezing, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mtl.config import Config
from mtl.errors import ConfigError
from mtl.pathnet import BadArgumentError, PathNet, StateFileError, active_modules
from mtl.pathnet.checks import as_features, as_labels

SMALL = dict(input_shape=(8, 8, 3), n_layers=3, n_modules=6, units=5, max_active=3)
GENOTYPE = np.array([[0, 2, 2], [5, 1, 3], [4, 4, 4]])  # repeats: 2, 3 and 1 distinct modules
FROZEN = ([1, 2], [0], [3, 4])  # layer 0 shares module 2 with the genotype


def reference_logits(net: PathNet, x: torch.Tensor, genotype, task: str, frozen=None) -> torch.Tensor:
    """The plain computation: every active module on its own, one at a time."""
    config = net.config
    hidden = x.reshape(len(x), *config.input_shape).permute(0, 3, 1, 2) if net.module_type == "conv" else x
    for layer, (evolving, fixed) in enumerate(active_modules(genotype, config, frozen)):
        outputs = []
        for module in sorted(set(evolving.tolist()) | set(fixed.tolist())):
            weight, bias = net.weight(layer)[module], net.bias(layer)[module]
            if net.module_type == "conv":
                outputs.append(torch.relu(F.conv2d(hidden, weight, bias, stride=2, padding=1)))
            else:
                outputs.append(torch.relu(hidden @ weight + bias))
        stacked = torch.stack(outputs)
        hidden = stacked.mean(0) if config.combine == "mean" else stacked.sum(0)
    return net.heads[task](hidden.flatten(1))


@pytest.mark.parametrize("module_type", ["linear", "conv"])
@pytest.mark.parametrize("combine", ["mean", "sum"])
@pytest.mark.parametrize("frozen", [None, FROZEN])
def test_batched_forward_equals_per_module_reference(module_type, combine, frozen):
    net = PathNet(Config(**SMALL, module_type=module_type, combine=combine, seed=3))
    net.add_head("t", 4)
    x = torch.randn(7, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    expected = reference_logits(net, x.reshape(7, -1), GENOTYPE, "t", frozen)
    torch.testing.assert_close(net(x, GENOTYPE, "t", frozen), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.predict_logits(x, GENOTYPE, "t", frozen, chunk_rows=3), expected,
                               rtol=1e-5, atol=1e-6)


def reference_training(net: PathNet, genotype, task, frozen, x, y, steps, dropped=None,
                       **sgd) -> dict[str, torch.Tensor]:
    """Autograd + torch.optim.SGD over a per-module network holding only the trainable modules.

    ``dropped(step, layer, module, output)``, if given, returns a module's output after dropout."""
    layers = active_modules(genotype, net.config, frozen)
    trained = {}
    for layer, (evolving, _) in enumerate(layers):
        for module in evolving.tolist():
            trained[layer, module] = (net.weight(layer)[module].clone().requires_grad_(),
                                      net.bias(layer)[module].clone().requires_grad_())
    head = torch.nn.Linear(net.heads[task].in_features, net.heads[task].out_features)
    head.load_state_dict(net.heads[task].state_dict())
    params = [p for pair in trained.values() for p in pair] + list(head.parameters())
    optimizer = torch.optim.SGD(params, **sgd)
    conv = net.module_type == "conv"
    for step in range(steps):
        hidden = x.reshape(len(x), *net.config.input_shape).permute(0, 3, 1, 2) if conv else x
        for layer, (evolving, fixed) in enumerate(layers):
            outputs = []
            for module in sorted(evolving.tolist() + fixed.tolist()):
                weight, bias = trained.get((layer, module), (net.weight(layer)[module], net.bias(layer)[module]))
                output = torch.relu(F.conv2d(hidden, weight, bias, stride=2, padding=1) if conv
                                    else hidden @ weight + bias)
                outputs.append(output if dropped is None else dropped(step, layer, module, output))
            hidden = torch.stack(outputs).mean(0)
        loss = F.cross_entropy(head(hidden.flatten(1)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = {f"{layer}/{module}/{kind}": tensor.detach() for (layer, module), pair in trained.items()
              for kind, tensor in zip(("weight", "bias"), pair)}
    result["head"] = head.weight.detach()
    return result


def assert_trained_as(net: PathNet, expected: dict[str, torch.Tensor]) -> None:
    """The network's trained tensors (head "t") equal :func:`reference_training`'s, to rounding."""
    for name, tensor in expected.items():
        if name == "head":
            actual = net.heads["t"].weight
        else:
            layer, module, kind = name.split("/")
            actual = getattr(net, kind)(int(layer))[int(module)]
        torch.testing.assert_close(actual, tensor, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("module_type", ["linear", "conv"])
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.0, 1e-2), (0.9, 1e-2)])
@pytest.mark.parametrize("frozen", [None, FROZEN])
def test_session_step_equals_autograd_sgd(module_type, momentum, weight_decay, frozen):
    net = PathNet(Config(**SMALL, module_type=module_type, seed=1))
    net.add_head("t", 4)
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 192, generator=generator), torch.randint(0, 4, (16,), generator=generator)
    sgd = dict(lr=0.1, momentum=momentum, weight_decay=weight_decay)
    expected = reference_training(net, GENOTYPE, "t", frozen, x, y, steps=3, **sgd)
    with net.session(GENOTYPE, "t", frozen, **sgd) as session:
        for _ in range(3):
            session.step(x, y)
    assert_trained_as(net, expected)


def session_dropout_masks(net: PathNet, genotype, frozen, batch: int, steps: int, p: float, seed: int):
    """``dropped(step, layer, module, output)`` for :func:`reference_training`: the masks a session with
    dropout ``p`` draws from ``torch.Generator().manual_seed(seed)``, mapped from its layout to modules.

    A session draws one ``torch.rand`` per layer and step, over its activations: linear ``(B, a*units)``,
    conv ``(B*H*W, a*c)`` (pixels by channels); the ``a`` modules in the session's order, trainable then
    frozen."""
    generator, conv = torch.Generator().manual_seed(seed), net.module_type == "conv"
    layers = active_modules(genotype, net.config, frozen)
    height, width, _ = net.config.input_shape
    sizes = []
    for _ in layers:
        height, width = (height + 1) // 2, (width + 1) // 2
        sizes.append((height, width))
    keep = {}
    for step in range(steps):
        for layer, (evolving, fixed) in enumerate(layers):
            order, units = evolving.tolist() + fixed.tolist(), net.units
            (height, width), a = sizes[layer], len(order)
            shape = (batch * height * width, a * units) if conv else (batch, a * units)
            kept = (torch.rand(shape, generator=generator) >= p).float() / (1 - p)
            for position, module in enumerate(order):
                mask = kept[:, position * units:(position + 1) * units]
                keep[step, layer, module] = (mask.reshape(batch, height, width, units).permute(0, 3, 1, 2) if conv
                                             else mask)
    return lambda step, layer, module, output: output * keep[step, layer, module]


@pytest.mark.parametrize("module_type", ["linear", "conv"])
@pytest.mark.parametrize("frozen", [None, FROZEN])
def test_session_with_dropout_equals_autograd_on_the_same_masks(module_type, frozen):
    net = PathNet(Config(**SMALL, module_type=module_type, seed=4))
    net.add_head("t", 4)
    generator = torch.Generator().manual_seed(5)
    x, y = torch.randn(16, 192, generator=generator), torch.randint(0, 4, (16,), generator=generator)
    sgd = dict(lr=0.1, momentum=0.9, weight_decay=1e-2)
    dropped = session_dropout_masks(net, GENOTYPE, frozen, batch=16, steps=3, p=0.3, seed=7)
    expected = reference_training(net, GENOTYPE, "t", frozen, x, y, steps=3, dropped=dropped, **sgd)
    with net.session(GENOTYPE, "t", frozen, dropout=0.3, **sgd) as session:
        session.dropout_generator = torch.Generator().manual_seed(7)
        for _ in range(3):
            session.step(x, y)
    assert_trained_as(net, expected)


def test_dropout_without_a_generator_is_an_error():
    net = PathNet(Config(**SMALL, seed=4))
    net.add_head("t", 4)
    with pytest.raises(ValueError, match="dropout_generator"):
        with net.session(GENOTYPE, "t", dropout=0.5) as session:
            session.step(torch.zeros(2, 192), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("shape, n_layers", [((7, 5, 3), 3), ((9, 4, 2), 3), ((6, 6, 3), 1)])
def test_conv_session_and_forward_on_odd_map_sizes_equal_the_reference(shape, n_layers):
    config = Config(**{**SMALL, "input_shape": shape, "n_layers": n_layers}, module_type="conv", seed=2)
    net = PathNet(config)
    net.add_head("t", 3)
    generator = torch.Generator().manual_seed(3)
    x, y = torch.randn(10, config.input_dim, generator=generator), torch.randint(0, 3, (10,), generator=generator)
    genotype, frozen = GENOTYPE[:n_layers], FROZEN[:n_layers]
    torch.testing.assert_close(net(x, genotype, "t", frozen), reference_logits(net, x, genotype, "t", frozen),
                               rtol=1e-5, atol=1e-6)
    expected = reference_training(net, genotype, "t", frozen, x, y, steps=2, lr=0.1, momentum=0.9)
    with net.session(genotype, "t", frozen, lr=0.1, momentum=0.9) as session:
        for _ in range(2):
            session.step(x, y)
    assert_trained_as(net, expected)


@pytest.mark.parametrize("module_type", ["linear", "conv"])
def test_frozen_and_inactive_modules_stay_bitwise_equal(module_type):
    config = Config(**SMALL, module_type=module_type, momentum=0.9, weight_decay=1e-3)
    net = PathNet(config)
    net.add_head("t", 3)
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(32, 192, generator=generator), torch.randint(0, 3, (32,), generator=generator)
    with net.session(GENOTYPE, "t", FROZEN, lr=0.5, momentum=0.9, weight_decay=1e-3) as session:
        for _ in range(5):
            session.step(x, y)
    for layer, (evolving, fixed) in enumerate(active_modules(GENOTYPE, config, FROZEN)):
        untouched = np.setdiff1d(np.arange(config.n_modules), evolving)
        assert len(fixed) and np.isin(fixed, untouched).all()
        for kind in ("weight", "bias"):
            now, then = net.state_dict()[f"{kind}{layer}"], before[f"{kind}{layer}"]
            assert torch.equal(now[untouched], then[untouched]), f"layer {layer}: frozen/inactive {kind} moved"
            if len(evolving):
                assert not torch.equal(now[evolving], then[evolving]), f"layer {layer}: trainable {kind} stayed"
    assert not torch.equal(net.heads["t"].weight, before["heads.t.weight"])


def test_all_modules_frozen_trains_only_the_head():
    config = Config(**SMALL)
    net = PathNet(config)
    net.add_head("t", 3)
    genotype = np.array([[1, 1, 1], [0, 0, 0], [3, 3, 3]])
    frozen = ([1], [0], [3])
    before = net.state_dict()["weight0"].clone()
    with net.session(genotype, "t", frozen) as session:
        session.step(torch.randn(8, 192), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    assert torch.equal(net.weight(0), before)


def test_same_seed_same_weights_and_heads():
    a, b, c = PathNet(Config(**SMALL, seed=4)), PathNet(Config(**SMALL, seed=4)), PathNet(Config(**SMALL, seed=5))
    for net in (a, b, c):
        net.add_head("t", 3)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.weight(0), c.weight(0))


def test_reinitialize_keeps_only_the_kept_modules():
    net = PathNet(Config(**SMALL))
    before = [net.weight(layer).clone() for layer in range(3)]
    net.reinitialize(keep=([0, 1], [2], []), seed=99)
    assert torch.equal(net.weight(0)[:2], before[0][:2]) and torch.equal(net.weight(1)[2], before[1][2])
    assert not torch.equal(net.weight(0)[2:], before[0][2:])
    assert not torch.equal(net.weight(2), before[2])


def test_wrong_input_shape_names_expected_and_got():
    net = PathNet(Config())
    net.add_head("t", 2)
    with pytest.raises(BadArgumentError, match=r"expected samples of shape \(64, 64, 3\) or flattened to 12288 "
                                               r"values, got a tensor of shape \(2, 32, 32, 3\)"):
        net(torch.zeros(2, 32, 32, 3), np.zeros((3, 4), dtype=int), "t")
    with pytest.raises(BadArgumentError, match=r"12288.*got an array of shape \(5, 100\)"):
        as_features(np.zeros((5, 100), np.float32), Config())
    with pytest.raises(BadArgumentError, match="no head for it"):
        net(torch.zeros(1, 12288), np.zeros((3, 4), dtype=int), "other")


def test_bad_data_arguments_are_named():
    config = Config(input_shape=(2, 2, 1))
    with pytest.raises(BadArgumentError, match="X: no samples"):
        as_features(np.zeros((0, 4), np.float32), config)
    with pytest.raises(BadArgumentError, match="sample 1 contains NaN"):
        as_features(np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]], np.float32), config)
    with pytest.raises(BadArgumentError, match="expected numbers"):
        as_features(np.array([["a"] * 4]), config)
    assert as_features(np.zeros((3, 2, 2, 1)), config).shape == (3, 4)
    with pytest.raises(BadArgumentError, match=r"labels must be in \[0, 2\] \(n_classes=3\), got values from 0 to 3"):
        as_labels([0, 3], 2, n_classes=3)
    with pytest.raises(BadArgumentError, match="got values from -1"):
        as_labels([-1, 0], 2)
    with pytest.raises(BadArgumentError, match="labels must be integers"):
        as_labels([0.0, 1.0], 2)
    with pytest.raises(BadArgumentError, match="3 labels for 2 samples"):
        as_labels([0, 1, 1], 2)


def test_bad_architecture_is_a_config_error():
    with pytest.raises(ConfigError, match="max_active"):
        Config(n_modules=3, max_active=4)
    with pytest.raises(ConfigError, match="n_layers"):
        Config(n_layers=0)
    assert PathNet(Config(input_shape=(5, 3, 3), n_layers=3, module_type="conv")).feature_dim == 8  # 1x1 maps
    with pytest.raises(BadArgumentError, match="n_classes"):
        PathNet(Config(**SMALL)).add_head("t", 1)


@pytest.mark.parametrize("module_type", ["linear", "conv"])
def test_momentum_buffers_of_another_layout_are_a_state_file_error(module_type):
    """A checkpoint whose momentum buffers do not fit the session (an older layout) restarts the run."""
    net = PathNet(Config(**SMALL, module_type=module_type))
    net.add_head("t", 3)
    session = net.session(GENOTYPE, "t", momentum=0.9)
    with pytest.raises(StateFileError, match="do not fit"):
        session.load_momentum_buffers([torch.zeros(3), None, torch.zeros(5)])
