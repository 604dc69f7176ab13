"""`python -m studio COMMAND ...`: one subcommand per module in `studio.commands.COMMANDS`.

A command's `run(args)` returns the exit status. Bad input (InvalidRequest, a bad device, a model that
is not there) ends the program with one line on stderr and a non-zero status, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from pipelines.requests import InvalidRequest
from studio.commands import COMMANDS

EXIT_BAD_INPUT = 2


class StudioArgumentParser(argparse.ArgumentParser):
    """argparse prints the usage then the error; the contract here is one line on stderr."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = StudioArgumentParser(prog="python -m studio", description="Diffusion Studio on the command line.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=StudioArgumentParser)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except InvalidRequest as error:
        print(f"error: {error}", file=sys.stderr)
    except (ValueError, FileNotFoundError, LookupError) as error:
        # Raised by the engine for a bad device/dtype, a model that is not on disk, an unknown key.
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
    except OSError as error:  # an --out that is a file, a full disk, no permission: what and where
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or type(error).__name__}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return EXIT_BAD_INPUT
