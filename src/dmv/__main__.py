from dmv.cli import run

run()
