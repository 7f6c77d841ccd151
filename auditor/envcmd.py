"""The `audit env` commands: make, list, locate and remove environments for cross-version audits."""
import click

from . import envs, registry


def columns():
    """Return the columns of `audit env list`: heading and how to read it from an environment's
    record; one column per registered backend (its framework's version there)."""
    frameworks = [(name, lambda r, b=backend: _package(r, *(b.distributions or (b.module,))))
                  for name, backend in registry.backends().items()]
    return (
        ("name", lambda r: r["name"]),
        ("Python", lambda r: (r.get("probe") or {}).get("python")),
        *frameworks,
        ("specs", lambda r: " ".join(r["specs"]) if r.get("specs") else None),
        ("path", lambda r: r["path"] + (f"  (broken: {r['broken']})" if r.get("broken") else "")),
    )


def __getattr__(name):
    if name == "COLUMNS":
        return columns()
    raise AttributeError(name)


def _package(record, *names):
    """Return the version of the first of the distributions `names` the record's probe found."""
    packages = (record.get("probe") or {}).get("packages") or {}
    return next((packages[n] for n in names if packages.get(n)), None)


@click.group("env")
def env():
    """Make and manage Python environments to audit other framework versions in.

    Each environment is a virtual environment in $ARGMAX_AUDIT_HOME/envs (default:
    ~/.cache/argmax-audit/envs) made with uv where it is installed, else with venv and pip (which
    follow your pip configuration). Audit in one with 'audit run --env NAME'; argmax-audit itself
    need not be installed there, only numpy and the frameworks.
    """


@env.command()
@click.argument("name")
@click.argument("specs", metavar="[SPEC]...", nargs=-1)
@click.option("--python", "python", metavar="PATH",
              help="Base interpreter of the environment (Python >= 3.9), e.g. python3.9 or "
                   "/usr/bin/python3.12. Default: the Python running argmax-audit.")
@click.option("--replace", is_flag=True, help="Build NAME anew if it exists.")
def create(name, specs, python, replace):
    """Make environment NAME with each SPEC installed.

    SPECs are pip requirement specifiers; numpy is added unless one names it (the worker needs
    numpy >= 1.23). The environment is built aside and moved into place once it works, so a failed
    install leaves nothing behind. For example:

    \b
        audit env create torch21 'torch==2.1.*' 'numpy<2' --python python3.10
        audit run --env torch21
    """
    envs.create(name, specs, progress=click.echo, python=python, replace=replace)


@env.command("list")
def list_():
    """List the environments and the versions they hold.

    One row each: name, Python, the version of each backend's framework (numpy, torch, jax, ...),
    the specs it was made with and its folder.
    """
    records = envs.list_envs()
    if not records:
        click.echo(f"no environments in {envs.envs_folder()}; make one with "
                   "'audit env create NAME SPEC...'")
        return
    shown = columns()
    rows = [[heading for heading, _ in shown]]
    rows += [[value(record) or "-" for _, value in shown] for record in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(shown) - 1)]
    for row in rows:
        click.echo("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]))


@env.command()
@click.argument("name")
def remove(name):
    """Delete environment NAME and everything installed in it."""
    click.echo(f"removed {name} ({envs.remove(name)})")


@env.command()
@click.argument("name")
def path(name):
    """Print the Python interpreter of environment NAME."""
    click.echo(envs.resolve(name))
