"""The Profiles screen: validate, new from the template, edit in $EDITOR (an invalid edit is
reported with its key and kept on disk), and the remote-code switch in plain sight."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from cliffscope import paths
from cliffscope.tui.capture import screen_text
from cliffscope.tui.screens.launch import LaunchScreen
from cliffscope.tui.screens.profiles import ProfilesScreen
from tests.test_tui_support import make_app, shows, wait_for

SIZE = (100, 30)


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    directory = tmp_path / "profiles"
    directory.mkdir()
    shutil.copy(paths.BUILTIN_PROFILES_DIR / "demo.toml", directory / "demo.toml")
    return directory


def editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.sh"
    script.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


async def test_invalid_edit_shows_error_and_keeps_file(tmp_path, profiles, monkeypatch) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", editor(tmp_path, "echo 'bogus_key = 1' >> \"$1\""))
    app = make_app(tmp_path / "runs", profiles)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await wait_for(pilot, shows(pilot, "builtin:demo"))
        await pilot.press("e")
        await wait_for(pilot, shows(pilot, "INVALID"), what="the profile marked invalid")
        text = screen_text(app)
        assert "bogus_key" in text and "demo.toml:" in text  # key and file:line are named
        assert "bogus_key = 1" in (profiles / "demo.toml").read_text()  # the edit is kept
        monkeypatch.setenv("EDITOR", editor(tmp_path, "sed -i '/bogus_key/d' \"$1\""))
        await pilot.press("e")
        await wait_for(pilot, lambda: "INVALID" not in screen_text(app), what="valid again")


async def test_new_profile_from_template(tmp_path, profiles) -> None:
    app = make_app(tmp_path / "runs", profiles)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("n")
        await pilot.press(*"bad name!", "enter")
        await wait_for(pilot, shows(pilot, "error"), what="the name is refused")
        assert not list(profiles.glob("bad*"))
        await pilot.press("ctrl+a", "ctrl+k", *"my-llava", "enter")
        await wait_for(pilot, lambda: (profiles / "my-llava.toml").exists())
        await wait_for(pilot, shows(pilot, "my-llava"))
        row = app.screen.query_one("#profiles-table").cursor_row
        assert app.screen.files[row][0].name == "my-llava.toml" and app.screen.files[row][1] is None


async def test_remote_code_switch_is_visible(tmp_path, profiles) -> None:
    text = (profiles / "demo.toml").read_text().replace('name = "demo"', 'name = "risky"')
    (profiles / "risky.toml").write_text(text + "trust_remote_code = true\n", encoding="utf-8")
    app = make_app(tmp_path / "runs", profiles)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await wait_for(pilot, shows(pilot, "risky"))
        await pilot.press("down")
        await wait_for(pilot, shows(pilot, "runs the checkpoint's own Python code"))
        assert "ON" in screen_text(app)
        await pilot.press("escape", "n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await pilot.pause(0.2)
        assert "risky  (remote code ON)" in [
            str(label) for label, _ in app.screen.query_one("#profile")._options
        ]
