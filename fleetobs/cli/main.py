"""Entry point: builds the typer app from the command modules and maps errors to exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from fleetobs import __version__
from fleetobs.cli import build as build_cmd
from fleetobs.cli import dashboards as dashboards_cmd
from fleetobs.cli import demo as demo_cmd
from fleetobs.cli import gpu_exporter as gpu_exporter_cmd
from fleetobs.cli import heartbeat as heartbeat_cmd
from fleetobs.cli import hub as hub_cmd
from fleetobs.cli import probe as probe_cmd
from fleetobs.cli import sidecar as sidecar_cmd
from fleetobs.cli import simulate as simulate_cmd
from fleetobs.cli import simulate_group as simulate_group_cmd
from fleetobs.cli import status as status_cmd
from fleetobs.cli import topology as topology_cmd
from fleetobs.cli.errors import EXIT_USAGE, CLIError, print_error
from fleetobs.errors import InputError

# typer >= 0.29 vendors click; take its exception classes from typer itself so both
# layouts work.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
_UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

app = typer.Typer(
    name="fleetobs",
    help="Observability for a fleet of AI agents on docker compose machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich markup would eat "[env X]" in option help and typer's rich
    # layout shows "<bool>" for flags and cuts long defaults.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fleetobs {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """fleetobs: is my fleet healthy, where, and why not."""


app.add_typer(topology_cmd.app, name="topology")
app.add_typer(dashboards_cmd.app, name="dashboards")
# Command modules register here, one line each (keep heavy imports inside the commands).
# --- commands ---
app.command("demo")(demo_cmd.demo)
app.command("probe")(probe_cmd.probe)
app.command("heartbeat")(heartbeat_cmd.heartbeat)
app.command("sidecar")(sidecar_cmd.sidecar)
app.command("simulate")(simulate_cmd.simulate)
app.command("simulate-group")(simulate_group_cmd.simulate_group)
app.command("hub")(hub_cmd.hub)
app.command("status")(status_cmd.status)
app.command("gpu-exporter")(gpu_exporter_cmd.gpu_exporter)
app.command("build")(build_cmd.build)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; bad input is one line on stderr and exit code 2, never a traceback."""
    try:
        result = app(args=list(argv) if argv is not None else None, prog_name="fleetobs",
                     standalone_mode=False)
    except CLIError as exc:
        print_error(str(exc))
        return exc.code
    except InputError as exc:  # TopologyError, SettingsError, ...
        print_error(str(exc))
        return EXIT_USAGE
    except typer.Abort:
        print_error("aborted")
        return 130
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A bare command group (`fleetobs`, `fleetobs topology`): show its help, exit 0.
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                typer.echo(ctx.get_help())
            return 0
        print_error(exc.format_message())  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except _ClickException as exc:
        # Usage errors: click's own message, kept to one line.
        print_error(exc.format_message())  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    # click returns the code of a typer.Exit raised inside a command.
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
