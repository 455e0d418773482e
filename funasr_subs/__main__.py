"""``python -m funasr_subs`` runs the command line."""

from funasr_subs.cli import run

run()
