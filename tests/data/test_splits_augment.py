import torch

from digitnet.data.augment import augment_batch
from digitnet.data.splits import make_splits


def test_validation_is_the_end_of_training_and_test_is_untouched(mnist):
    splits = make_splits(mnist, val_size=5000)
    assert len(splits.train) == 55000 and len(splits.val) == 5000 and len(splits.test) == 10000
    assert torch.equal(splits.val.images[0], torch.from_numpy(mnist.train_images[55000]))
    assert torch.equal(splits.test.images, torch.from_numpy(mnist.test_images))
    assert make_splits(mnist, val_size=0).val is None
    assert len(make_splits(mnist, val_size=1000).train) == 59000


def test_augmentation_is_batched_keeps_shape_and_background(mnist):
    x = torch.from_numpy(mnist.test_images[:64]).float().div(255).unsqueeze(1)
    for preset in ("light", "robust", "strong"):
        g = torch.Generator().manual_seed(1)
        out = augment_batch(x, preset, g)
        assert out.shape == x.shape
        assert out.min() >= -1e-5 and out.max() <= 1 + 1e-5
        assert not torch.allclose(out, x)  # it changed the digits
        # ink is moved, not destroyed: total ink stays within a plausible band
        ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
        assert ratio.median() > 0.5 and ratio.median() < 2.0
        assert torch.equal(out, augment_batch(x, preset, torch.Generator().manual_seed(1)))
    assert torch.equal(augment_batch(x, "none"), x)
