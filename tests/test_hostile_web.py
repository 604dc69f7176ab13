"""The studio served to strangers, attacked through its own API: one server, launched as app.py launches it
(--auth, typed paths confined to the models folder, an upload limit; here 4 MB).

Every bad request gets an error that names the problem; after all of them the server still answers and
nothing is half-written. Files: nothing outside the models and outputs folders is read, and Gradio's file
route serves none of ours.
"""
from __future__ import annotations

import math
import re
import socket
from pathlib import Path

import httpx
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines import PipelineRegistry
from pipelines.catalog import SHAPES_DIR
from studio.ui import build_demo, launch_options

USER, PASSWORD = "alice", "wonderland"
PROMPT = "a large red circle in the center on a white background"
QUICK = dict(prompt=PROMPT, steps=1, width=64, height=64, seed=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WritesAMarker:
    """Unpickling this calls open(marker, "w"): the file appearing would prove the pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from dreambooth_support import shapes_lora_file

    root = tmp_path_factory.mktemp("hostile")
    models, outputs, elsewhere = root / "models", root / "outputs", root / "elsewhere"
    for folder in (models, outputs, elsewhere):
        folder.mkdir()
    shapes_lora_file(models / "ink.safetensors", seed=3)
    shapes_lora_file(elsewhere / "stray.safetensors", seed=4)
    (models / "linked-shapes").symlink_to(SHAPES_DIR, target_is_directory=True)  # the operator's own link
    (models / "linked-lora.safetensors").symlink_to(elsewhere / "stray.safetensors")
    torch.save({"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)},
                "callback": WritesAMarker(root / "pickle-ran.txt")}, models / "evil.ckpt")
    return {"root": root, "models": models, "outputs": outputs, "elsewhere": elsewhere}


@pytest.fixture(scope="module")
def studio(dirs):
    registry = PipelineRegistry(models_dir=dirs["models"], outputs_dir=dirs["outputs"], device="cpu",
                                dtype="float32", allow_paths="models-dir")
    demo = build_demo(registry)
    app, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                              auth=(USER, PASSWORD), **launch_options(registry, max_upload_mb=4))
    client = Client(url, auth=(USER, PASSWORD), verbose=False, download_files=str(dirs["root"] / "downloads"))
    yield {"registry": registry, "client": client, "url": url, "app": app}
    demo.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile_files")
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")  # 50 kB that decode to 400 million pixels
    Image.new("L", (9000, 8000)).save(folder / "large.png")  # 72 million pixels: below Pillow's own limits
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (folder / "text.png").write_text("this is not a picture")
    (folder / "empty.png").write_bytes(b"")
    info = PngInfo()
    info.add_text("parameters", "x" * 3_000_000)  # megabytes of text, in one line
    Image.new("RGB", (8, 8)).save(folder / "long-text.png", pnginfo=info)
    info = PngInfo()
    info.add_text("parameters", "y" * 20_000_000, zip=True)  # 20 MB that compress to 20 kB
    Image.new("RGB", (8, 8)).save(folder / "zipped-text.png", pnginfo=info)
    (folder / "too-big.png").write_bytes(bytes(5 * 2**20))  # over the 4 MB upload limit
    Image.new("RGB", (64, 64), "white").save(folder / "plain.png")
    return folder


def _message(error: Exception) -> str:
    return str(error).strip()


def assert_refused(call, field: str, *words: str) -> str:
    """The call fails with the studio's message, which starts with the field's name."""
    with pytest.raises(AppError) as caught:
        call()
    message = _message(caught.value)
    assert message.startswith(f"{field}:") or f"{field}:" in message.splitlines()[0], message
    for word in words:
        assert word in message, message
    return message


# ---- --auth covers everything ----------------------------------------------------------------------------

# What Gradio 6.31 answers without a login. None of them returns the studio's data or runs its code:
# the login page and its assets, Gradio's own bookkeeping (who is logged in: nobody; the app id), and routes
# that need an event or session id (random, never shown to another user) or are switched off (vibe editing).
PUBLIC_ROUTES = {
    ("GET", "/"), ("GET", "/favicon.ico"), ("GET", "/theme.css"), ("GET", "/robots.txt"), ("GET", "/manifest.json"),
    ("GET", "/static/{path:path}"), ("GET", "/assets/{path:path}"), ("GET", "/svelte/{path:path}"),
    ("GET", "/pwa_icon"), ("GET", "/pwa_icon/{size}"), ("GET", "/openapi.json"), ("POST", "/login"),
    ("POST", "/login/"), ("GET", "/logout"), ("GET", "/monitoring/{key}"),
    ("GET", "/gradio_api/user"), ("GET", "/gradio_api/user/"), ("GET", "/gradio_api/token"),
    ("GET", "/gradio_api/token/"), ("GET", "/gradio_api/app_id"), ("GET", "/gradio_api/app_id/"),
    ("GET", "/gradio_api/runs"), ("GET", "/gradio_api/runs/"), ("GET", "/gradio_api/startup-events"),
    ("GET", "/gradio_api/theme.css"), ("GET", "/gradio_api/heartbeat/{session_hash}"),
    ("GET", "/gradio_api/custom_component/{id}/{environment}/{type}/{file_name}"),
    ("POST", "/gradio_api/stream/{event_id}"), ("POST", "/gradio_api/stream/{event_id}/close"),
    ("GET", "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist.m3u8"),
    ("GET", "/gradio_api/stream/{session_hash}/{run}/{component_id}/{segment_id}.{ext}"),
    ("GET", "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist-file"),
    ("POST", "/gradio_api/reset"), ("POST", "/gradio_api/reset/"), ("POST", "/gradio_api/cancel"),
    ("POST", "/gradio_api/vibe-edit"), ("POST", "/gradio_api/vibe-edit/"), ("POST", "/gradio_api/undo-vibe-edit"),
    ("POST", "/gradio_api/undo-vibe-edit/"), ("GET", "/gradio_api/vibe-code"), ("GET", "/gradio_api/vibe-code/"),
    ("POST", "/gradio_api/vibe-code"), ("POST", "/gradio_api/vibe-code/"), ("POST", "/gradio_api/vibe-starter-queries"),
    ("POST", "/gradio_api/vibe-starter-queries/"),
}


def _routes(app):
    """(method, path) of every route of the launched app, those in included routers too."""
    for route in app.routes:
        candidates = [route] if getattr(route, "path", None) is not None else []
        candidates += [c.original_route for c in getattr(route, "_effective_candidates", [])]
        for candidate in candidates:
            for method in sorted(getattr(candidate, "methods", None) or {"GET"}):
                if method != "HEAD":
                    yield method, candidate.path


def test_every_route_but_the_login_page_wants_a_login(studio):
    routes = sorted(set(_routes(studio["app"])))
    assert len(routes) > 60 and ("POST", "/gradio_api/queue/join") in routes  # the walk found Gradio's API
    public = set()
    for method, path in routes:
        if path == "/gradio_api/heartbeat/{session_hash}":  # an endless stream: known public, not fetched
            public.add((method, path))
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        answer = httpx.request(method, studio["url"].rstrip("/") + concrete, json={}, timeout=30)
        if answer.status_code != 401:
            public.add((method, path))
    assert public <= PUBLIC_ROUTES, sorted(public - PUBLIC_ROUTES)


def test_the_api_and_the_files_need_the_login(studio, dirs):
    from gradio_client.exceptions import AuthenticationError

    images, info = studio["client"].predict(**QUICK, api_name="/txt2img")
    served = images[0]["image"]  # the downloaded copy; its URL on the server is the cached copy's
    with pytest.raises((AuthenticationError, ValueError)):
        Client(studio["url"], verbose=False)
    for route in ("config", "gradio_api/info", f"gradio_api/file={info['paths'][0]}", "gradio_api/upload",
                  "gradio_api/queue/join", "gradio_api/call/txt2img"):
        for method in ("GET", "POST"):
            answer = httpx.request(method, studio["url"] + route, json={"data": [PROMPT], "fn_index": 0}, timeout=30)
            assert answer.status_code in (401, 405), (method, route, answer.status_code)
    assert Path(served).is_file()


# ---- Gradio's file route serves nothing of ours -------------------------------------------------------------

@pytest.fixture(scope="module")
def logged_in(studio):
    session = httpx.Client(base_url=studio["url"], timeout=30)
    session.post("login", data={"username": USER, "password": PASSWORD}).raise_for_status()
    yield session
    session.close()


def test_outputs_are_served_only_as_the_copy_handed_out(studio, logged_in, dirs):
    from gradio.utils import get_upload_folder

    client = studio["client"]
    job = client.submit(**QUICK, api_name="/txt2img")
    images, info = job.result(timeout=300)
    saved = Path(info["paths"][0])
    assert saved.is_relative_to(dirs["outputs"]) and saved.is_file()
    # The client downloaded exactly the saved PNG, from a copy in Gradio's cache.
    assert Path(images[0]["image"]).read_bytes() == saved.read_bytes()
    cached = [p for p in Path(get_upload_folder()).rglob(saved.name) if p.read_bytes() == saved.read_bytes()]
    assert cached, "the served copy is in Gradio's cache"
    assert logged_in.get(f"gradio_api/file={cached[0]}").status_code == 200
    # The saved file itself, by its name, is not served: names in the outputs folder are guessable.
    for guess in (saved, saved.parent / ".." / saved.parent.name / saved.name, saved.relative_to(dirs["root"])):
        assert logged_in.get(f"gradio_api/file={guess}").status_code == 403, guess


def test_the_file_route_refuses_every_path_outside_its_cache(studio, logged_in, dirs):
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder())
    link = cache / "robust-test-link.png"  # a link planted in the cache itself, pointing at the models folder
    link.unlink(missing_ok=True)
    link.symlink_to(dirs["models"] / "ink.safetensors")
    try:
        for path in ["/etc/passwd", str(dirs["models"] / "ink.safetensors"), str(SHAPES_DIR / "model_index.json"),
                     str(Path(__file__).resolve()), "app.py", "../../../../etc/passwd", f"{cache}/../../etc/passwd",
                     "%2e%2e/%2e%2e/etc/passwd", str(link), "file:///etc/passwd"]:
            answer = logged_in.get(f"gradio_api/file={path}")
            assert answer.status_code in (403, 404), (path, answer.status_code)
    finally:
        link.unlink(missing_ok=True)


def test_an_input_naming_a_server_file_is_refused(studio, logged_in):
    """A crafted request whose file record points at a server path instead of an upload."""
    client = studio["client"]
    record = {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}, "orig_name": "hostname.png"}
    with pytest.raises(AppError):
        client.predict(image=record, api_name="/png_info")
    assert client.predict(image=None, api_name="/png_info")[0] == ""  # and the endpoint still answers


# ---- typed paths stay inside the models folder --------------------------------------------------------------

def test_typed_model_and_lora_paths_stay_inside_the_models_folder(studio, dirs):
    client = studio["client"]
    for model in (str(SHAPES_DIR), "../assets/shapes", str(dirs["models"] / "linked-shapes"), "~/models/x",
                  str(dirs["elsewhere"]), "/nonexistent/model"):
        assert_refused(lambda: client.predict(**QUICK, model=model, api_name="/txt2img"), "model",
                       "not inside the models folder")
    for lora in (str(dirs["elsewhere"] / "stray.safetensors"), str(dirs["models"] / "linked-lora.safetensors"),
                 "../elsewhere/stray.safetensors"):
        assert_refused(lambda: client.predict(**QUICK, loras=[lora], api_name="/txt2img"), "loras",
                       "not inside the models folder")
    # Keys the operator's models folder lists work, links included, and so does a path inside it.
    _, info = client.predict(**QUICK, model="linked-shapes", loras=["ink:0.5"], api_name="/txt2img")
    assert info["request"]["model"] == "linked-shapes"
    _, info = client.predict(**QUICK, loras=[str(dirs["models"] / "ink.safetensors")], api_name="/txt2img")
    assert len(info["paths"]) == 1


def test_a_depth_model_folder_outside_the_models_folder_is_not_opened(studio, files):
    assert_refused(lambda: studio["client"].predict(kind="depth", image=handle_file(str(files / "plain.png")),
                                                    preprocessor="depth", options=f'{{"model": "{SHAPES_DIR}"}}',
                                                    api_name="/preprocess"),
                   "adapters", "inside the models folder")


def test_a_pickled_checkpoint_is_refused_and_never_unpickled(studio, dirs):
    # an unopened .ckpt is taken for SD 1.x (its family is not read without the opt-in): SD 1.x's size
    assert_refused(lambda: studio["client"].predict(**{**QUICK, "width": 512, "height": 512}, model="evil",
                                                    api_name="/txt2img"), "model", "pickled checkpoint")
    assert not (dirs["root"] / "pickle-ran.txt").exists()


# ---- bad values, field by field -----------------------------------------------------------------------------

TXT2IMG_DEFAULTS = {"prompt": PROMPT, "negative_prompt": "", "model": "shapes", "scheduler": "Euler a", "steps": 1,
                    "guidance_scale": 7.0, "width": 64, "height": 64, "seed": 5, "num_images": 1, "loras": []}
NUMBER_FIELDS = ("steps", "guidance_scale", "width", "height", "seed", "num_images")
BAD_NUMBERS = ["twenty", "", [20], {"n": 20}, True, math.nan, math.inf, -math.inf, 1e300, 10**30, -5, 20.5]


def endpoint_defaults(client, api_name: str) -> dict:
    """Every parameter of an endpoint with its default, in order (a raw call must send all of them)."""
    parameters = client.view_api(return_format="dict", print_info=False)["named_endpoints"][api_name]["parameters"]
    return {p["parameter_name"]: p.get("parameter_default") for p in parameters}


def raw_call(session: httpx.Client, api_name: str, body: str) -> tuple[str, str]:
    """Gradio's HTTP API with a JSON body written by hand (gradio_client cannot send NaN): (event, data)."""
    answer = session.post(f"gradio_api/call/{api_name}", content=body, headers={"Content-Type": "application/json"})
    answer.raise_for_status()
    stream = session.get(f"gradio_api/call/{api_name}/{answer.json()['event_id']}").text
    events = re.findall(r"event: (\w+)\ndata: (.*)", stream)
    return events[-1]


@pytest.mark.parametrize("field", NUMBER_FIELDS)
def test_txt2img_number_fields_refuse_bad_values_by_name(studio, logged_in, field):
    import json

    client = studio["client"]
    for value in BAD_NUMBERS:
        if field == "guidance_scale" and value == 20.5:
            continue  # a CFG scale may have a fraction
        if isinstance(value, float) and not math.isfinite(value):
            values = {**endpoint_defaults(client, "/txt2img"), **TXT2IMG_DEFAULTS, field: value}
            body = json.dumps({"data": list(values.values())})  # NaN, Infinity: what JSON itself has no word for
            event, data = raw_call(logged_in, "txt2img", body)
            assert event == "error" and f"{field}:" in data, (value, event, data)
            continue
        assert_refused(lambda: client.predict(**{**QUICK, field: value}, api_name="/txt2img"), field)


@pytest.mark.parametrize("field, value", [
    ("prompt", 42), ("prompt", ["a", "b"]), ("prompt", "x" * 100_000), ("negative_prompt", {"a": 1}),
    ("model", ""), ("model", 7), ("model", "x" * 5000), ("model", "a\x00b"), ("scheduler", "Bogus"),
    ("scheduler", None), ("scheduler", ["Euler a"]), ("loras", 5), ("loras", [""]), ("loras", ["ink:nan"]),
    ("loras", ["ink:1e999"]), ("loras", [["ink", 1]]), ("loras", "nope"),
])
def test_txt2img_text_fields_refuse_bad_values_by_name(studio, field, value):
    assert_refused(lambda: studio["client"].predict(**{**QUICK, field: value}, api_name="/txt2img"), field)


IMAGE_CASES = {
    "bomb.png": "million pixels", "large.png": "million pixels", "corrupt.png": "cannot read",
    "text.png": "cannot read", "empty.png": "cannot read",
}


@pytest.mark.parametrize("name", sorted(IMAGE_CASES))
def test_bad_pictures_are_refused_by_every_endpoint_that_takes_one(studio, files, name):
    client = studio["client"]
    upload = handle_file(str(files / name))
    words = IMAGE_CASES[name]
    assert_refused(lambda: client.predict(image=upload, api_name="/png_info"), "image", words)
    assert_refused(lambda: client.predict(kind="sketch", image=upload, width=64, height=64, api_name="/preprocess"),
                   "image", words)
    assert_refused(lambda: client.predict(**QUICK, kind="sketch", image=upload, api_name="/adapter"), "image", words)
    assert_refused(lambda: client.predict(**QUICK, kind="sketch", image=handle_file(str(files / "plain.png")),
                                          kind_2="edge", image_2=upload, api_name="/adapter"), "image_2", words)


def test_png_info_reads_megabytes_of_text_at_once_and_refuses_a_text_bomb(studio, files):
    client = studio["client"]
    text, settings = client.predict(image=handle_file(str(files / "long-text.png")), api_name="/png_info")
    assert settings["prompt"] == "x" * 3_000_000  # read whole, at once
    assert text.startswith("x" * 200_000) and text.endswith("(2,800,000 more characters)")  # shown capped
    with pytest.raises(AppError, match="could not be read|cannot read|Decompressed"):
        client.predict(image=handle_file(str(files / "zipped-text.png")), api_name="/png_info")


def test_adapter_fields_refuse_bad_values_by_name(studio, files):
    client = studio["client"]
    plain = handle_file(str(files / "plain.png"))
    for settings in ({"kind": "nope"}, {"kind": 5}, {"weight": "nan"}, {"weight": "heavy"}, {"weight": 99},
                     {"preprocess": "yes"}, {"options": "{not json"}, {"options": "[1, 2]"}, {"options": "9" * 5000},
                     {"options": "[" * 100_000}, {"preprocessor": "nope"}, {"adapter_conditioning_factor": 0.5}):
        field = "adapter_conditioning_factor" if "adapter_conditioning_factor" in settings else "adapters"
        assert_refused(lambda: client.predict(**{**QUICK, "kind": "sketch", "image": plain, **settings},
                                              api_name="/adapter"), field)
    for settings in ({"width": "wide"}, {"height": 1e300}, {"kind": ""}, {"preprocessor": 3}):
        field = next(iter(settings))
        assert_refused(lambda: client.predict(**{"kind": "sketch", "image": plain, "width": 64, "height": 64,
                                                 **settings}, api_name="/preprocess"), field)


def test_an_upload_over_the_limit_is_refused(studio, logged_in, files):
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # gradio_client checks first
        studio["client"].predict(image=handle_file(str(files / "too-big.png")), api_name="/png_info")
    with open(files / "too-big.png", "rb") as data:  # and the server refuses a client that does not
        answer = logged_in.post("gradio_api/upload", files={"files": ("too-big.png", data, "image/png")})
    assert answer.status_code == 413, (answer.status_code, answer.text[:200])


def test_after_all_of_it_the_server_answers_and_nothing_is_half_written(studio, dirs):
    """Runs last in this module: every output is a whole PNG with its settings, and no temporary file is left."""
    images, info = studio["client"].predict(**QUICK, num_images=2, api_name="/txt2img")
    assert info["seeds"] == [5, 6]
    saved = sorted(dirs["outputs"].rglob("*"))
    pngs = [p for p in saved if p.is_file()]
    assert pngs and all(p.suffix == ".png" and not p.name.startswith(".") for p in pngs), saved
    for path in pngs:
        with Image.open(path) as image:
            image.load()
            assert image.size == (64, 64) and "parameters" in image.info


def test_dreambooth_from_the_web_writes_only_inside_the_models_folder(studio, files):
    from pipelines.requests import InvalidRequest
    from studio.tabs.dreambooth import make_config

    values = dict(model="shapes", files=[str(files / "plain.png")] * 3, instance_prompt="a sks shape",
                  class_prompt="", prior=False, num_class_images=10, method="lora", steps=2, learning_rate=0,
                  resolution=64, seed=0, checkpoint_every=1, batch_size=1, lora_rank=4)
    for name in ("../evil", "/tmp/evil", ".hidden", "a/b", "x" * 65, ""):
        with pytest.raises(InvalidRequest) as caught:
            make_config(studio["registry"], name=name, **values)
        assert caught.value.field == "name"
    with pytest.raises(InvalidRequest, match="not inside the models folder") as caught:
        make_config(studio["registry"], name="fine", **{**values, "model": str(SHAPES_DIR)})
    assert caught.value.field == "model"
    config = make_config(studio["registry"], name="fine", **values)
    assert Path(config.out).parent == studio["registry"].models_dir


def test_the_adapters_upload_widget_refuses_a_bomb_before_gradio_opens_it(studio, files):
    import gradio as gr
    from gradio.components.image import ImageData
    from gradio.utils import get_upload_folder

    demo = build_demo(studio["registry"])
    [upload, *_] = [b for b in demo.blocks.values()
                    if isinstance(b, gr.Image) and b.label == "Upload a photo or a condition map"]
    cached = Path(get_upload_folder()) / "robust-bomb" / "bomb.png"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes((files / "bomb.png").read_bytes())
    with pytest.raises(gr.Error, match="million pixels"):
        upload.preprocess(ImageData(path=str(cached), orig_name="bomb.png"))
    with pytest.raises(gr.Error, match="cannot read"):
        upload.preprocess(ImageData(path=str(files / "text.png"), orig_name="text.png"))
    picture = upload.preprocess(ImageData(path=str(files / "plain.png"), orig_name="plain.png"))
    assert picture.size == (64, 64)
