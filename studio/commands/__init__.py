"""The CLI's subcommands. Each module has NAME, HELP, add_arguments(parser) and run(args) -> exit status;
add a module here to add a command."""
from studio.commands import download, generate, models, schedulers

COMMANDS = [generate, models, schedulers, download]
