"""The CLI's subcommands. Each module has NAME, HELP, add_arguments(parser) and run(args) -> exit status;
add a module here to add a command."""
from studio.commands import download, generate, models, schedulers
from studio.commands import export, train_dreambooth

COMMANDS = [generate, models, schedulers, download]
COMMANDS += [train_dreambooth, export]
from studio.commands import batch  # noqa: E402  (its own line: commands are added by several branches)

COMMANDS.append(batch)
