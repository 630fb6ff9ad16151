"""Draw how `digitnet read` read pictures: each line as the line recognizer saw it, every character shaded over
the columns CTC aligned it to.

    python benchmarks/line_alignment.py examples/amounts.png examples/date.png --out examples/read-alignment.png

(The README's picture.) The line images and alignments are the ones ``read`` used: the recognizer's
``recognize_lines`` step is watched while ``Recognizer.read`` runs; the texts shown are ``read``'s answers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digitnet.evaluate.plots import plot_line_alignment
from digitnet.recognizer import Recognizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pictures", nargs="+", help="pictures of written numbers")
    parser.add_argument("--out", default="alignment.png", help="PNG to write")
    parser.add_argument("--line-model", default="line", help="line recognizer (default: the bundled one)")
    args = parser.parse_args(argv)
    recognizer = Recognizer.from_pretrained(line_model=args.line_model, reader="line")
    seen_images, seen_readings = [], []
    recognize = recognizer.recognize_lines

    def watched(images):
        readings = recognize(images)
        seen_images.extend(images)
        seen_readings.extend(readings)
        return readings

    recognizer.recognize_lines = watched  # the same step, recorded
    answers = []
    for picture in args.pictures:
        answer = recognizer.read(picture)
        answers.extend(line["text"] for line in answer["lines"])
        print(f"{picture}: {answer['text']!r}")
    # The digit model may change a digit the line model read (they vote): the answer's text is shown beside it.
    plot = plot_line_alignment(seen_images, answers, [r.text for r in seen_readings],
                               [r.spans for r in seen_readings],
                               title="each line as the line model saw it, its characters over their CTC columns;\n"
                                     "beside it read's answer → the line model's own reading "
                                     "(red: the digit model's vote changed a digit)")
    plot.save(args.out)
    print(Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
