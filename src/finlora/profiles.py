"""Named parameter profiles (profiles/*.yaml): overlays on params.yaml, such as the paper's setups,
turned into the `-S key=value` overrides that `dvc exp run` takes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from finlora.errors import FinloraError

PROFILES_DIR = Path("profiles")


def load_profile(name: str, folder: Path = PROFILES_DIR) -> dict:
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise FinloraError(f"{path}: no such profile", hint=f"profiles: {known}")
    return yaml.safe_load(path.read_text()) or {}


def overrides(profile: dict, prefix: str = "") -> list[str]:
    """Flatten to Hydra-style overrides: `key=value`, lists as JSON literals, and an empty mapping
    or a null as `~key` (Hydra would merge `key={}` into the existing mapping instead of emptying
    it; a null removes the key, such as a task group the profile leaves out)."""
    result = []
    for key, value in profile.items():
        name = f"{prefix}{key}"
        if value is None:
            result.append(f"~{name}")
        elif isinstance(value, dict):
            result += overrides(value, f"{name}.") if value else [f"~{name}"]
        else:
            literal = json.dumps(value) if isinstance(value, list) else str(value).lower() \
                if isinstance(value, bool) else str(value)
            result.append(f"{name}={literal.replace(' ', '')}")
    return result


def apply(raw: dict, profile: dict) -> dict:
    """params.yaml's mapping with the profile laid over it (mappings merge, other values replace,
    nulls remove)."""
    merged = dict(raw)
    for key, value in profile.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and value and isinstance(merged.get(key), dict):
            merged[key] = apply(merged[key], value)
        else:
            merged[key] = value
    return merged
