"""The import directions of ARCHITECTURE.md, checked by parsing every module's imports.

- ``imaging`` imports nothing of ours (no ``backend``, ``schemas``, ``tests``);
- ``schemas`` import nothing of ``backend`` (no models: they describe the API, not the tables);
- services import no request machinery: no ``flask`` names but ``current_app`` (and of that
  only ``.config``: deployment settings such as the secret key), no werkzeug errors, nothing of
  ``backend.http``; they raise ``backend.errors``;
- views (API blueprints, dashboard) never commit or roll back, and do not add, delete or flush
  rows themselves: the unit of work commits, services write;
- every ``flask`` command is registered in ``backend/ops/cli.py`` alone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Flask names a service may import (see the module docstring).
SERVICE_FLASK_NAMES = {"current_app"}
#: Session methods that write or end a transaction: views leave them to services and the unit of work.
WRITING_SESSION_METHODS = {"add", "add_all", "delete", "flush", "commit", "rollback", "begin", "begin_nested"}


def modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def imported_modules(tree: ast.AST) -> Iterator[tuple[str, list[str], int]]:
    """(module, imported names, line) of every absolute import in a module, nested ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [alias.name for alias in node.names], node.lineno


def parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def is_within(module: str, *packages: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


@pytest.mark.parametrize("path", modules("imaging"), ids=name)
def test_imaging_imports_nothing_of_ours(path):
    found = [(module, line) for module, _, line in imported_modules(parse(path))
             if is_within(module, "backend", "schemas", "tests", "bench")]
    assert not found, f"{name(path)} imports {found}"


@pytest.mark.parametrize("path", modules("schemas"), ids=name)
def test_schemas_import_no_models(path):
    found = [(module, line) for module, _, line in imported_modules(parse(path)) if is_within(module, "backend")]
    assert not found, f"{name(path)} imports {found}"


@pytest.mark.parametrize("path", modules("backend/services"), ids=name)
def test_services_import_no_request_machinery(path):
    tree = parse(path)
    found = []
    for module, names, line in imported_modules(tree):
        if module == "flask" and set(names) - SERVICE_FLASK_NAMES or (module == "flask" and not names):
            found.append((module, names, line))
        if is_within(module, "flask.globals", "werkzeug", "backend.http", "flask_smorest"):
            found.append((module, names, line))
    # current_app only for deployment settings.
    found += [("current_app." + node.attr, [], node.lineno) for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "current_app" and node.attr != "config"]
    assert not found, f"{name(path)} uses {found}"


def session_calls(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """``db.session.<method>(...)`` calls of a module."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "session"):
            yield node.func.attr, node.lineno


@pytest.mark.parametrize("path", modules("backend/blueprints", "backend/dashboard"), ids=name)
def test_views_leave_writes_to_services_and_the_unit_of_work(path):
    found = [(method, line) for method, line in session_calls(parse(path)) if method in WRITING_SESSION_METHODS]
    assert not found, f"{name(path)} calls db.session.{found}"


def test_every_command_is_registered_in_one_place():
    registering = []
    for path in modules("backend"):
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Attribute) and node.attr == "add_command":
                registering.append(name(path))
    assert set(registering) == {"backend/ops/cli.py"}


def test_every_command_of_the_app_comes_from_the_ops_cli(app):
    from backend.ops.cli import COMMANDS

    ours = {command.name for command in COMMANDS}
    not_ours = {"routes", "run", "shell", "openapi"}  # Flask's and flask-smorest's
    assert set(app.cli.list_commands(None)) - not_ours == ours
