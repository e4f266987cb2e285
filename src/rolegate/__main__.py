"""`python -m rolegate` runs the command line."""

from rolegate.cli import main

main()
