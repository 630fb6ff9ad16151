"""Reading digits in real pictures: photos and scans of handwriting, not just MNIST arrays.

- :mod:`~digitnet.vision.io` loads any common image safely (formats, modes, EXIF, size caps),
- :mod:`~digitnet.vision.preprocess` turns a picture into an MNIST-like 28×28, the way MNIST was made,
- :mod:`~digitnet.vision.boxes` and :mod:`~digitnet.vision.underlines` take away lines that are not writing:
  printed form boxes and combs, lines drawn by hand under a number,
- :mod:`~digitnet.vision.lines` finds the lines of writing, :mod:`~digitnet.vision.marks` their decimal points,
  commas, minus signs and spaces, and :mod:`~digitnet.vision.segment` splits each line into its digits,
- :mod:`~digitnet.vision.pipeline` chains them for every caller (recognizer, server, explain, benchmarks):
  ``prepare_digit``/``prepare_number`` → a ``classify`` callable → ``digit_answer``/``number_answer``.

:class:`digitnet.recognizer.Recognizer` ties them to a model (``predict``, ``predict_batch``, ``read``);
:mod:`digitnet.cli.pictures` adds ``digitnet predict`` and ``digitnet read``.
The submodules import torch, so this package imports nothing itself and ``digitnet --help`` stays fast.
"""
