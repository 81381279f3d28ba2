"""Where runs, profiles and user tasks live.

Precedence, highest first: an explicit option (`--runs-dir`, `--profiles-dir`), the environment
(`CLIFFSCOPE_RUNS`, `CLIFFSCOPE_PROFILES`, `CLIFFSCOPE_TASKS`), then defaults: the checkout's
`runs/` when cliffscope runs from its source tree (so a researcher's clone keeps its runs beside
it), otherwise the platform's user data dir. Profiles are searched in the user config dir and in
the profiles shipped with cliffscope.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "cliffscope"
PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
BUILTIN_PROFILES_DIR = CHECKOUT_DIR / "profiles"


def _from_checkout() -> bool:
    return (CHECKOUT_DIR / "pyproject.toml").exists() and (CHECKOUT_DIR / "runs").is_dir()


def runs_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The run store root; created on first use."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get("CLIFFSCOPE_RUNS"):
        path = Path(os.environ["CLIFFSCOPE_RUNS"])
    elif _from_checkout():
        path = CHECKOUT_DIR / "runs"
    else:
        path = Path(platformdirs.user_data_dir(APP)) / "runs"
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_profiles_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "profiles"


def profile_dirs(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for `<name>.toml`, first match wins."""
    if explicit:
        return [Path(explicit).expanduser()]
    dirs: list[Path] = []
    env = os.environ.get("CLIFFSCOPE_PROFILES")
    if env:
        dirs.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    dirs.append(user_profiles_dir())
    dirs.append(BUILTIN_PROFILES_DIR)
    return dirs


def user_tasks_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("CLIFFSCOPE_TASKS")
    if env:
        dirs.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    dirs.append(Path(platformdirs.user_config_dir(APP)) / "tasks")
    return dirs
