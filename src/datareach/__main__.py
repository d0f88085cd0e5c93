from datareach.cli import run

run()
