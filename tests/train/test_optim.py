import pytest
import torch

from digitnet.models import create_model
from digitnet.train.callbacks import EarlyStopping
from digitnet.train.config import TrainConfig
from digitnet.train.optim import OPTIMIZERS, build_optimizer, build_scheduler, parameter_groups


def _cfg(**kw):
    return TrainConfig(arch="mlp", **kw).resolved()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_reduces_the_loss(name):
    torch.manual_seed(0)
    model = create_model("mlp", dropout=0.0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    lr = {"adadelta": 1.0, "sgd": 0.1}.get(name, 1e-3)
    opt = build_optimizer(model, _cfg(optimizer=name, lr=lr, l2=0.0))
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7


def test_l2_and_weight_decay_skip_biases_and_batchnorm():
    groups = parameter_groups(create_model("lenet5-bn"), _cfg(weight_decay=1e-4, l2=1e-3))
    assert groups[0]["weight_decay"] == 1e-4 and groups[0]["l2"] == 1e-3
    assert all(p.dim() > 1 for p in groups[0]["params"])
    assert groups[1]["weight_decay"] == 0 and groups[1]["l2"] == 0 and all(p.dim() == 1 for p in groups[1]["params"])


def _two_steps(optimizer_name: str, weight_decay: float, l2: float, loss_l2: float) -> dict:
    """The weights after two steps of build_optimizer on cross-entropy + ``loss_l2``·Σw² (weight matrices only)."""
    torch.manual_seed(0)
    model = create_model("mlp", dropout=0.0)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    lr = 0.5 if optimizer_name == "sgd" else 1e-2  # large enough for the penalty to show in SGD's first steps
    opt = build_optimizer(model, _cfg(optimizer=optimizer_name, lr=lr, weight_decay=weight_decay, l2=l2))
    for _ in range(2):  # two steps: the second one sees Adam's moments of the first
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss = loss + loss_l2 * sum((p ** 2).sum() for p in model.parameters() if p.dim() > 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_l2_is_the_keras_loss_term_for_every_optimizer(name, weight_decay):
    # --l2 c is exactly training on loss + c·Σw²; --weight-decay keeps the optimizer's own meaning on top
    # (decoupled for AdamW). Folding l2 into AdamW's weight_decay would make it decoupled decay instead.
    with_flag = _two_steps(name, weight_decay, l2=0.01, loss_l2=0.0)
    in_the_loss = _two_steps(name, weight_decay, l2=0.0, loss_l2=0.01)
    for key, value in in_the_loss.items():
        torch.testing.assert_close(with_flag[key], value, rtol=1e-4, atol=2e-5)
    without = _two_steps(name, weight_decay, l2=0.0, loss_l2=0.0)
    assert (with_flag["1.weight"] - without["1.weight"]).abs().max() > 1e-4  # the penalty did change the step


def _lrs(schedule, steps, **kw):
    model = torch.nn.Linear(2, 2)
    cfg = _cfg(schedule=schedule, lr=0.1, optimizer="sgd", epochs=1, **kw)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_onecycle_warms_up_peaks_and_decays():
    lrs = _lrs("onecycle", 100, warmup=0.2)
    assert lrs[0] == pytest.approx(0.01)
    assert max(lrs) == pytest.approx(0.1) and lrs.index(max(lrs)) == 20
    assert lrs[-1] < 0.003 and min(lrs) > 0


def test_cosine_with_warmup():
    lrs = _lrs("cosine", 100, warmup=0.1)
    assert lrs[0] < lrs[9] and max(lrs) == pytest.approx(0.1) and lrs[-1] < 0.001


def test_step_and_plateau():
    model = torch.nn.Linear(2, 2)
    cfg = _cfg(schedule="step", lr=1.0, optimizer="sgd", step_size=1, step_gamma=0.7)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, 10)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.7)
    cfg = _cfg(schedule="plateau", lr=1.0, optimizer="sgd", plateau_factor=0.2, plateau_patience=3)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, 10)
    for acc in [0.9, 0.9, 0.9, 0.9]:
        sched.step(acc)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)
    sched.step(0.9)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)


def test_early_stopping_patience():
    model = torch.nn.Linear(1, 1)
    stopper = EarlyStopping("val_accuracy", patience=2)
    assert not stopper.update(0.5, 1, model)
    assert not stopper.update(0.6, 2, model)
    assert not stopper.update(0.6, 3, model)
    assert stopper.update(0.55, 4, model)
    assert stopper.best == 0.6 and stopper.best_epoch == 2
    loss_stopper = EarlyStopping("val_loss", patience=1)
    loss_stopper.update(1.0, 1, model)
    assert loss_stopper.update(1.5, 2, model)
