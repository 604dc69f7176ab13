"""The outputs folder read back as a history: per-user folders, newest first, pages, settings of each image."""
from __future__ import annotations

import datetime
import os

import pytest
from PIL import Image

from pipelines import GenerationRequest
from pipelines.history import history_page
from pipelines.outputs import OutputWriter, user_folder


def writer_on(root, day: int) -> OutputWriter:
    return OutputWriter(root, today=lambda: datetime.date(2026, 3, day))


def save(writer: OutputWriter, seed: int, user=None, prompt="a red circle") -> str:
    image = Image.new("RGB", (8, 8), (seed * 10 % 256, 0, 0))
    maps = (Image.new("RGB", (8, 8)),) if seed % 2 else ()
    return writer.save(image, GenerationRequest(prompt=prompt, seed=seed), maps, user=user)


@pytest.mark.parametrize("name, expected", [
    ("alice", "alice"), ("Bob_2", "Bob_2"), ("a-b", "a-b"),
])
def test_plain_user_names_are_their_own_folder(name, expected):
    assert user_folder(name) == expected


@pytest.mark.parametrize("name", ["../bob", "a b", "a/b", ".", "..", "é", "a.b", "x" * 100, "c:\\x"])
def test_other_user_names_are_made_safe_and_kept_apart(name):
    folder = user_folder(name)
    assert folder and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in folder)
    assert folder not in (".", "..") and len(folder) <= 64
    assert folder != user_folder(name + "!")  # two names never share a folder


def test_a_users_images_go_to_their_own_folder(tmp_path):
    writer = writer_on(tmp_path, 1)
    mine = save(writer, 3, user="alice")
    shared = save(writer, 4)
    assert os.path.dirname(mine) == str(tmp_path / "users" / "alice" / "2026-03-01")
    assert os.path.dirname(shared) == str(tmp_path / "2026-03-01")


def test_history_is_newest_first_paged_and_per_user(tmp_path):
    for day, seeds in ((1, (1, 2)), (2, (3, 4, 5))):
        writer = writer_on(tmp_path, day)
        for seed in seeds:
            save(writer, seed)
            save(writer, 100 + seed, user="alice")
    save(writer_on(tmp_path, 2), 999, user="bob")
    writer = writer_on(tmp_path, 2)

    first = history_page(writer, user="alice", page=1, per_page=2)
    assert (first.total, first.pages, first.page) == (5, 3, 1)
    assert [e.settings["seed"] for e in first.entries] == [105, 104]
    last = history_page(writer, user="alice", page=3, per_page=2)
    assert [e.settings["seed"] for e in last.entries] == [101]
    assert history_page(writer, user="alice", page=99, per_page=2).page == 3  # past the end: the last page

    bob = history_page(writer, user="bob")
    assert [e.settings["seed"] for e in bob.entries] == [999]
    everyone = history_page(writer, user=None, per_page=100)
    assert everyone.total == 11  # the whole outputs folder: the operator's view, or a shared gallery
    assert not any(".cond" in e.path for e in everyone.entries)  # condition maps are not results
    assert history_page(writer, user="carol").total == 0


def test_each_entry_carries_its_settings_and_parameters(tmp_path):
    writer = writer_on(tmp_path, 7)
    save(writer, 42, prompt="small green star, bottom right, white background")
    (entry,) = history_page(writer).entries
    assert entry.settings["prompt"] == "small green star, bottom right, white background"
    assert entry.settings["seed"] == 42 and entry.date == "2026-03-07"
    assert entry.parameters.startswith("small green star") and "Seed: 42" in entry.parameters
    assert entry.caption == "seed 42 · 2026-03-07"


def test_a_png_without_metadata_or_a_broken_one_is_still_listed(tmp_path):
    folder = tmp_path / "2026-03-01"
    folder.mkdir()
    Image.new("RGB", (4, 4)).save(folder / "00000-1.png")
    (folder / "00001-2.png").write_bytes(b"not a png")
    (folder / "notes.png").write_bytes(b"not ours")  # not an NNNNN-SEED name
    page = history_page(OutputWriter(tmp_path))
    assert sorted(os.path.basename(e.path) for e in page.entries) == ["00000-1.png", "00001-2.png"]
    assert all(e.settings == {} for e in page.entries)
