"""`python -m scaptool`: the scaptool command."""
from scaptool.cli.main import run

run()
