"""``python -m offload`` runs the command line."""

from offload.cli import main

main()
