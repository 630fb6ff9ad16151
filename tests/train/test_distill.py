"""Knowledge distillation (``--teacher``): the loss mixes the teacher in only where it is right, and bad teachers
are refused in one line."""

import pytest
import torch
import torch.nn.functional as F

from digitnet.models.registry import get_spec
from digitnet.train.config import TrainConfig
from digitnet.train.setup import load_teacher
from digitnet.train.step import distillation_loss
from digitnet.utils import DigitnetError


def test_without_a_share_for_the_teacher_it_is_cross_entropy():
    logits, teacher = torch.randn(8, 10), torch.randn(8, 10)
    y = torch.arange(8) % 10
    assert torch.allclose(distillation_loss(logits, y, teacher, 0.0, 1.0), F.cross_entropy(logits, y))


def test_a_right_teacher_pulls_the_student_towards_its_answer():
    y = torch.tensor([3])
    teacher = torch.full((1, 10), -2.0)
    teacher[0, 3], teacher[0, 8] = 4.0, 3.0  # right, with 8 as its second guess
    student = torch.zeros(1, 10, requires_grad=True)
    distillation_loss(student, y, teacher, 1.0, 1.0).backward()
    # Gradient descent raises the logits whose gradient is negative: the teacher's 3 and its second guess 8.
    assert student.grad[0, 3] < 0 and student.grad[0, 8] < 0
    assert (student.grad[0, [0, 1, 2, 4, 5, 6, 7, 9]] > 0).all()
    assert distillation_loss(teacher.clone(), y, teacher, 1.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_a_wrong_teacher_is_not_listened_to():
    y = torch.tensor([1, 1])
    teacher = torch.zeros(2, 10)
    teacher[:, 7] = 5.0  # reads a flagged 1 as 7
    student = torch.randn(2, 10)
    assert torch.allclose(distillation_loss(student, y, teacher, 0.9, 1.0), F.cross_entropy(student, y))


def test_teachers_that_cannot_teach_are_refused_with_the_reason():
    spec = get_spec("fastnet")
    with pytest.raises(DigitnetError, match="--teacher /nonexistent: .*no such model directory"):
        load_teacher(TrainConfig(teacher="/nonexistent"), spec, torch.device("cpu"))
    for bad in ({"distill": 1.5}, {"distill_temperature": 0.0}, {"distill_temperature": float("nan")}):
        option = "--distill-temperature" if "distill_temperature" in bad else "--distill"
        with pytest.raises(DigitnetError, match=f"{option} must be"):
            TrainConfig(teacher="best", **bad).resolved()
    with pytest.raises(DigitnetError, match="not crnn-digits"):
        load_teacher(TrainConfig(teacher="best"), get_spec("crnn-digits"), torch.device("cpu"))
    assert load_teacher(TrainConfig(), spec, torch.device("cpu")) is None


def test_the_bundled_best_model_teaches_frozen():
    teacher = load_teacher(TrainConfig(teacher="best"), get_spec("fastnet"), torch.device("cpu"))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_a_run_with_a_teacher_trains_on_the_mixed_loss():
    from digitnet.data.splits import Split, Splits
    from digitnet.saved_model import load_model
    from digitnet.train.setup import build_run

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (32, 28, 28), dtype=torch.uint8, generator=g)
    best = load_model("best")
    from digitnet.models.registry import preprocess

    with torch.no_grad():
        teacher_logits = best.model(preprocess(images, best.spec))
    labels = teacher_logits.argmax(1)  # the teacher is right on every picture
    splits = Splits(train=Split(images, labels), val=None, test=Split(images[:8], labels[:8]))
    cfg = TrainConfig(arch="fastnet", batch_size=32, teacher="best", distill=1.0, label_smoothing=0.0,
                      schedule="none", threads=1)
    run = build_run(cfg, splits, torch.device("cpu"))
    x, y = run.make_batch(torch.arange(32))
    with torch.no_grad():
        expected = distillation_loss(run.model(x), y, teacher_logits, 1.0, 1.0)
        cross_entropy = F.cross_entropy(run.model(x), y)
    loss = run.train_step(x, y)[0]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert abs(loss.item() - cross_entropy.item()) > 1e-3  # all teacher: not the labels' cross-entropy


def test_a_teacher_fed_otherwise_gets_its_own_input_from_the_students(mnist, unit_best):
    """A teacher saved with another contract ("unit", as an ensemble has) or size (a 32-px LeNet student) sees what it
    would see on its own: the logits it gives the raw images prepared its own way."""
    import warnings

    from digitnet.models.registry import preprocess
    from digitnet.saved_model import ModelContractWarning, load_model

    images = torch.from_numpy(mnist.test_images[:16])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", ModelContractWarning)
        for student, teacher in (("fastnet", str(unit_best)), ("lenet5", "best")):
            own = load_model(teacher)
            expected = own.model(preprocess(images, own.spec))
            spec = get_spec(student)
            fed = load_teacher(TrainConfig(teacher=teacher), spec, torch.device("cpu"))
            torch.testing.assert_close(fed(preprocess(images, spec)), expected, atol=1e-4, rtol=0)
            # fed the student's input as it is, it would answer otherwise: the feeding is what makes it right
            assert not torch.allclose(own.model(preprocess(images, spec)[..., :28, :28]), expected, atol=1e-2)
