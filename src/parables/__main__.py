"""`python -m parables ...` (and `accelerate launch -m parables train ...`)."""

from parables.cli import main

main()
