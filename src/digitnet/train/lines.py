"""Training a line recognizer (a model whose spec says ``task="lines"``): what differs from training a digit classifier.

The engine's loop is the same; :class:`digitnet.train.setup.Run` hands these steps to a :class:`LineTask`:

* a batch is ``batch_size`` synthetic lines (:mod:`digitnet.data.lines`), each drawn from its own
  ``MAX_CHARS`` slots of the epoch's permutation of the training digits, so an epoch still visits every
  training digit once and the batch order and the drawing both come from the run's generator (exact resume);
* the loss is CTC over the alphabet (``torch.nn.functional.ctc_loss``, blank 0), and a line counts as right
  when greedy decoding gives its text exactly;
* validation lines are drawn once from the *validation* digits (held-out training writers), with a seed of
  their own, so every epoch is measured on the same lines; the test lines likewise from the test digits, once,
  after training.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from digitnet.data.lines import LINE_HEIGHT, MAX_CHARS, LineBatch, draw_lines
from digitnet.data.samples import ReaderSamples
from digitnet.data.splits import Split
from digitnet.models.crnn import BLANK, REDUCTION, encode, greedy_decode, output_lengths

VAL_LINES = 600  # lines drawn from the validation digits, measured every epoch (at most: a small split, fewer)
TEST_LINES = 2000  # lines drawn from the test digits, measured once (at most)
EVAL_SEED = 20_171  # validation and test lines are the same whatever the training seed: runs compare
EVAL_BATCH = 100


@dataclass
class LineTargets:
    """What a batch of lines should read: CTC targets (flat classes, lengths), output lengths and the texts."""

    targets: torch.Tensor
    target_lengths: torch.Tensor
    input_lengths: torch.Tensor
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, count: int) -> LineTargets:
        """The first ``count`` lines' targets."""
        return LineTargets(self.targets[:int(self.target_lengths[:count].sum())], self.target_lengths[:count],
                           self.input_lengths[:count], self.texts[:count])


def targets_for(lines: LineBatch) -> LineTargets:
    flat, lengths = encode(lines.texts)
    return LineTargets(flat, lengths, output_lengths(lines.widths.cpu()), lines.texts)


def with_reader_lines(images: torch.Tensor, target: LineTargets, samples: ReaderSamples,
                      pick: list[int]) -> tuple[torch.Tensor, LineTargets]:
    """A batch of lines (B, 1, LINE_HEIGHT, W) and its targets, with the reader samples' lines ``pick`` added (each
    padded, or the batch, to the wider of the two)."""
    chosen = [samples.lines[k] for k in pick]
    width = max([images.shape[-1], *(line.shape[1] for line in chosen)])
    width += (-width) % REDUCTION
    batch = images.new_zeros((images.shape[0] + len(chosen), 1, LINE_HEIGHT, width))
    batch[:images.shape[0], :, :, :images.shape[-1]] = images
    for k, line in enumerate(chosen):
        batch[images.shape[0] + k, 0, :, :line.shape[1]] = line.to(batch.dtype) / 255
    texts = [samples.texts[k] for k in pick]
    flat, lengths = encode(texts)  # the batch's own lines are encoded already
    widths = torch.tensor([line.shape[1] for line in chosen], dtype=torch.long)
    return batch, LineTargets(torch.cat([target.targets, flat]), torch.cat([target.target_lengths, lengths]),
                              torch.cat([target.input_lengths, output_lengths(widths)]), target.texts + texts)


def ctc_loss(logits: torch.Tensor, target: LineTargets) -> torch.Tensor:
    """Mean CTC loss per line (each line's loss divided by its length, as ``CTCLoss``'s "mean") of logits (B, T, C)."""
    log_probs = logits.float().log_softmax(2).transpose(0, 1)  # (T, B, C)
    return F.ctc_loss(log_probs, target.targets, target.input_lengths, target.target_lengths, blank=BLANK,
                      reduction="mean", zero_infinity=True)


def greedy_texts(logits: torch.Tensor, input_lengths: torch.Tensor) -> list[str]:
    """Best-path texts of a batch of logits (B, T, C), each cut to its own length (:func:`greedy_decode`'s text:
    the best path of the logits is that of their softmax)."""
    rows = logits.detach().float().cpu().numpy()
    return [greedy_decode(row[:length]).text for row, length in zip(rows, input_lengths.tolist(), strict=True)]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions that turn ``a`` into ``b``."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def draw_fixed_lines(split: Split, count: int, seed: int) -> LineBatch:
    """``count`` lines from ``split``'s digits (each digit used about as often), the same for the same seed."""
    generator = torch.Generator(device=split.images.device).manual_seed(seed)
    n = len(split)
    rounds = -(-count * MAX_CHARS // n)
    order = torch.cat([torch.randperm(n, generator=generator, device=split.images.device) for _ in range(rounds)])
    order = order[:count * MAX_CHARS]
    return draw_lines(split.images[order], split.labels[order], generator, count)


def _line_count(split: Split, most: int) -> int:
    """Lines to draw from a split: ``most``, or fewer for a small split (each digit in about 3 lines at most)."""
    return max(1, min(most, len(split) // 4))


def _batches(model: torch.nn.Module, lines: LineBatch):
    """``model``'s logits on ``lines``, ``EVAL_BATCH`` lines at a time, in eval mode: (batch of lines, logits)."""
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(lines.texts), EVAL_BATCH):
            part = LineBatch(lines.images[start:start + EVAL_BATCH], lines.widths[start:start + EVAL_BATCH],
                             lines.texts[start:start + EVAL_BATCH],
                             lines.centres[start:start + EVAL_BATCH] if lines.centres is not None else None)
            width = int(part.widths.max())
            width += (-width) % REDUCTION
            yield part, model(part.images[..., :width])
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_lines(model: torch.nn.Module, lines: LineBatch) -> dict:
    """Loss, exact-line accuracy and character error rate of ``model`` on ``lines``."""
    loss_sum, right, errors, chars = 0.0, 0, 0, 0
    wrong: list[tuple[str, str]] = []
    for part, logits in _batches(model, lines):
        target = targets_for(part)
        loss_sum += float(ctc_loss(logits, target)) * len(target)
        for read, truth in zip(greedy_texts(logits, target.input_lengths), part.texts, strict=True):
            right += read == truth
            errors += edit_distance(read, truth)
            chars += len(truth)
            if read != truth:
                wrong.append((truth, read))
    n = len(lines.texts)
    return {"loss": loss_sum / n, "accuracy": right / n, "char_error_rate": errors / max(chars, 1),
            "errors": n - right, "num_samples": n, "wrong": wrong}


@torch.no_grad()
def alignment_offset(model: torch.nn.Module, lines: LineBatch) -> float:
    """Where ``model``'s CTC columns sit relative to the digits they read, in line-image pixels: the median, over
    the digits of the lines it reads exactly, of (column centre − the digit's ink centre as drawn).

    Saved with a line recognizer as ``ctc_offset`` (fitted on validation lines, as a classifier's temperature is),
    and taken off by the line reader where it parts a line between characters.
    """
    offsets = []
    for part, logits in _batches(model, lines):
        probabilities = torch.softmax(logits.float(), 2).cpu().numpy()
        for k, length in enumerate(output_lengths(part.widths.cpu()).tolist()):
            decoded = greedy_decode(probabilities[k, :length])
            if decoded.text == part.texts[k]:
                offsets += [read - drawn for char, read, drawn in zip(decoded.text, decoded.centres(), part.centres[k],
                                                                      strict=True) if char.isdigit()]
    return float(statistics.median(offsets)) if offsets else 0.0


def test_lines(test: Split) -> LineBatch:
    """The test lines: drawn from the test digits ``test``, the same for every run (and for its report)."""
    return draw_fixed_lines(test, _line_count(test, TEST_LINES), EVAL_SEED + 1)


class LineTask:
    """The line recognizer's batches, loss, score and evaluation for :class:`digitnet.train.setup.Run`."""

    def __init__(self, splits, batch_size: int):
        self.batch_size = batch_size  # lines per batch
        self.val_lines = draw_fixed_lines(splits.val, _line_count(splits.val, VAL_LINES), EVAL_SEED) \
            if splits.val is not None else None
        self.test_split = splits.test

    @property
    def digits_per_batch(self) -> int:
        return self.batch_size * MAX_CHARS

    def make_batch(self, images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor,
                   generator: torch.Generator, augment: str) -> tuple[torch.Tensor, LineTargets]:
        lines = draw_lines(images[idx], labels[idx], generator, len(idx) // MAX_CHARS, augment=augment != "none")
        return lines.images, targets_for(lines)

    @staticmethod
    def score(logits: torch.Tensor, target: LineTargets) -> tuple[torch.Tensor, int]:
        """Lines read exactly (greedy decoding) and lines in the batch."""
        texts = greedy_texts(logits, target.input_lengths)
        return torch.tensor(sum(t == r for t, r in zip(texts, target.texts, strict=True))), len(target)

    def evaluate(self, model: torch.nn.Module, lines: LineBatch) -> dict:
        return evaluate_lines(model, lines)

    def validate(self, model: torch.nn.Module) -> dict:
        if self.val_lines is None:
            return {}
        val = self.evaluate(model, self.val_lines)
        return {"val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_char_error_rate": val["char_error_rate"]}

    def alignment_offset(self, model: torch.nn.Module) -> float:
        """``model``'s :func:`alignment_offset` on the validation lines (0 without them)."""
        return alignment_offset(model, self.val_lines) if self.val_lines is not None else 0.0

    def test_lines(self) -> LineBatch:
        return test_lines(self.test_split)

    def test(self, model: torch.nn.Module) -> dict:
        return self.evaluate(model, self.test_lines())
