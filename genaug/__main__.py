"""``python -m genaug`` runs the command-line interface."""

from genaug.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
