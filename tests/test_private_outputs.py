"""Signed-in users each have their own outputs: saved under outputs/users/<name>/, listed in History only for
them (unless the operator shares the gallery), and never served by path, so a guessed path fetches nothing."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from gradio_client import Client
from PIL import Image

from browser_support import free_port
from pipelines import PipelineRegistry
from studio.ui import build_demo, launch_options

USERS = [("alice", "alice-secret"), ("bob", "bob-secret")]
PROMPT = "a large red circle in the top left on a blue background"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("private")
    registry = PipelineRegistry(models_dir=root / "models", outputs_dir=root / "outputs", device="cpu",
                                dtype="float32")
    demo = build_demo(registry)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                            auth=USERS, **launch_options(registry))
    made = {}
    for user, password in USERS:
        client = Client(url, auth=(user, password), verbose=False, download_files=str(root / f"downloads-{user}"))
        images, info = client.predict(prompt=PROMPT, steps=2, width=64, height=64, seed=len(made) + 5,
                                      api_name="/txt2img")
        made[user] = (images, info)
    yield registry, demo, url, made
    demo.close()


def signed_in(url: str, user: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=url, follow_redirects=True, timeout=30)
    assert http.post("/login", data={"username": user, "password": password}).status_code == 200
    return http


def test_each_users_images_are_saved_in_their_own_folder(studio):
    registry, _, _, made = studio
    for user, _ in USERS:
        (path,) = made[user][1]["paths"]
        assert Path(path).parent.parent == registry.outputs.root / "users" / user
        with Image.open(made[user][0][0]["image"]) as image:  # the user got the picture, metadata and all
            assert image.info["parameters"].startswith(PROMPT)


def test_no_one_fetches_a_saved_file_by_its_path(studio):
    _, _, url, made = studio
    alices = made["alice"][1]["paths"][0]
    for user, password in USERS:
        http = signed_in(url, user, password)
        try:
            assert http.get(f"/gradio_api/file={alices}").status_code == 403  # not even alice: not served
        finally:
            http.close()


def test_history_lists_only_the_users_own_images_unless_the_gallery_is_shared(studio):
    registry, demo, _, made = studio

    def listed(a_demo, user: str) -> set[str]:
        [opened] = [fn for fn in a_demo.fns.values() if fn.name == "first_page"]
        shown = opened.fn(SimpleNamespace(username=user, session_hash="test"))
        entries = next(value for component, value in shown.items() if isinstance(value, list)
                       and value and isinstance(value[0], dict))
        return {Path(entry["image"]).name for entry in entries}

    names = {user: Path(made[user][1]["paths"][0]).name for user, _ in USERS}
    assert listed(demo, "alice") == {names["alice"]}
    assert listed(demo, "bob") == {names["bob"]}
    gallery = build_demo(registry, shared_gallery=True)
    assert listed(gallery, "bob") == {names["alice"], names["bob"]}
