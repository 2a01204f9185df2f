from playground.cli import playground_command

playground_command(prog_name="python -m playground")
