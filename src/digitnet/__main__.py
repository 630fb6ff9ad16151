"""``python -m digitnet`` (and ``torchrun -m digitnet``) run the CLI."""

from digitnet.cli import main

main()
