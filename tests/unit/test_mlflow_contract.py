"""The import contract that keeps mlflow inside models.tracking names every other module of models/."""

import ast
import pkgutil
import tomllib
from pathlib import Path

import models

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def mlflow_contract() -> dict:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c.get("id") == "mlflow")


def test_every_module_but_models_tracking_is_forbidden_to_import_mlflow():
    contract = mlflow_contract()
    others = {f"models.{m.name}" for m in pkgutil.iter_modules(models.__path__) if m.name != "tracking"}
    assert contract["type"] == "forbidden"
    assert contract["forbidden_modules"] == ["mlflow"]
    assert "ignore_imports" not in contract
    assert set(contract["source_modules"]) == {"api", "intelligence", "collectors", *others}


def test_the_models_package_itself_imports_nothing():
    """models/__init__.py is outside the contract (naming ``models`` would take in models.tracking)."""
    tree = ast.parse(Path(models.__file__).read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
