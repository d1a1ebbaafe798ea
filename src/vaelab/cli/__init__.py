"""The ``vaelab`` command.

Each sub-command is one module in this package that defines ``command`` (a
:class:`click.Command`); the group below finds them, so adding a command is adding a file.
Heavy imports (torch, matplotlib) happen inside the commands, keeping ``--help`` quick.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from .. import __version__
from ..errors import VaelabError


class _DiscoveredGroup(click.Group):
    """A group whose commands are the ``command`` objects of this package's modules."""

    def _modules(self) -> dict[str, str]:
        names = {}
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_"):
                names[info.name.replace("_", "-")] = info.name
        return names

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self._modules()) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        module = self._modules().get(name)
        if module is None:
            return None
        return importlib.import_module(f"{__name__}.{module}").command


@click.group(cls=_DiscoveredGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="vaelab")
def cli() -> None:
    """vaelab: train, measure and use autoencoders and variational autoencoders.

    Start with `vaelab demo` (trains a conv VAE on real MNIST digits in about a minute),
    then `vaelab COMMAND --help` for any command below.
    """


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a :class:`VaelabError` becomes one line on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="vaelab", standalone_mode=False)
    except VaelabError as exc:
        click.echo(f"vaelab: error: {exc}", err=True)
        return exc.exit_status
    except click.exceptions.Abort:
        click.echo("vaelab: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("vaelab: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # `vaelab ... | head` closed the pipe: not an error worth a traceback
        sys.stderr.close()
        return 0
    return 0
