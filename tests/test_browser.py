"""The studio as a user sees it, in a real browser (Debian's Chromium through Playwright): generating with
the keyboard, progress between slow steps, Stop, toasts, typed values out of range, pickers after a reload,
the Adapters sketchpad, PNG Info, History and Send-to, a closed tab, settings and styles kept, DreamBooth's
Stop. Each test keeps a screenshot of what the page showed last in test-artifacts/browser/."""
from __future__ import annotations

import re

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from browser_support import (PacedRegistry, chromium, choose, draw_square, free_port, hidden_image_parts,
                             keep_screenshot, open_page, open_tab, progress_label, record_labels, recorded_labels,
                             set_number, visible, wait_for_label, wait_for_toast)
from studio.ui import build_demo, launch_options

PROMPT = "a large red circle in the top left on a blue background"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    registry = PacedRegistry(models_dir=root / "models", outputs_dir=root / "outputs", device="cpu", dtype="float32")
    demo = build_demo(registry)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                            **launch_options(registry))
    yield registry, url, root
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, studio, request):
    registry, url, _ = studio
    registry.step_seconds = 0.0
    page = open_page(browser, url)
    yield page
    if not page.is_closed():
        keep_screenshot(page, request.node.name)
        page.context.close()
    registry.step_seconds = 0.0


def prompt_box(page):
    return visible(page, ".studio-prompt textarea")


def generate_and_wait(page, prompt: str = PROMPT, *, steps: int = 4) -> str:
    prompt_box(page).fill(prompt)
    set_number(page, "Steps", steps)
    visible(page, ".studio-generate").click()
    return wait_for_label(page, "^Done:")


def test_ctrl_enter_generates_with_the_chosen_sampler_and_the_image_shows_whole(page):
    prompt_box(page).fill(PROMPT)
    choose(page, "Sampler (scheduler)", "DPM++ 2M")
    choose(page, "Schedule type", "Karras")
    set_number(page, "Steps", 8)
    prompt_box(page).press("Control+Enter")
    assert wait_for_label(page, "^Done: 1 image").startswith("Done: 1 image(s)")
    images = visible(page, ".studio-fit-620").locator("img")
    assert images.count() == 1
    assert images.first.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [128, 128]
    parameters = visible(page, ".studio-parameters textarea").input_value()
    assert parameters.startswith(PROMPT) and "Sampler: DPM++ 2M, Schedule type: Karras" in parameters
    assert hidden_image_parts(page, ".studio-fit-620") == []


def test_progress_keeps_its_place_between_slow_steps_and_shows_speed_and_time_left(page, studio):
    registry, _, _ = studio
    registry.step_seconds = 0.8  # slower than the UI's 0.5 s heartbeat, which used to flip the bar back
    prompt_box(page).fill(PROMPT)
    set_number(page, "Steps", 4)
    record_labels(page)
    visible(page, ".studio-generate").click()
    wait_for_label(page, "^Done:")
    labels = recorded_labels(page)
    first_step = next(k for k, label in enumerate(labels) if label.startswith("Step "))
    assert not [label for label in labels[first_step:] if "Loading" in label], labels
    assert any(re.fullmatch(r"Step [2-4] / 4 · \d+\.\d (s/it|it/s) · 0:0\d left", label) for label in labels), labels


def test_stop_ends_a_long_run_and_esc_presses_it(page, studio):
    registry, _, _ = studio
    registry.step_seconds = 0.3
    ended = len(registry.endings)
    prompt_box(page).fill(PROMPT)
    set_number(page, "Steps", 150)
    visible(page, ".studio-generate").click()
    wait_for_label(page, r"^Step [2-9] / 150")
    page.wait_for_function("() => [...document.querySelectorAll('.studio-generate')].some(b => b.offsetParent && "
                           "b.disabled && b.innerText.includes('running'))")  # no silent extra clicks
    page.keyboard.press("Escape")
    assert wait_for_label(page, "^Stopped").startswith("Stopped: 0 image(s) finished")
    assert registry.run_ended.wait(timeout=60)
    outcome, steps = registry.endings[ended]
    assert outcome == "cancelled" and steps < 150
    assert visible(page, ".studio-generate").is_enabled()


def test_reuse_seed_before_any_image_says_so_in_a_toast(page):
    visible(page, "button:has-text('♻')").click()
    assert "No image generated yet" in wait_for_toast(page, "nothing to reuse")


def test_an_empty_prompt_and_typed_values_out_of_range_are_refused_by_name(page, studio):
    registry, _, _ = studio
    runs = len(registry.endings)
    visible(page, ".studio-generate").click()
    wait_for_toast(page, "prompt: it is empty")
    prompt_box(page).fill(PROMPT)
    for field, value, message in [("Steps", 1000, "steps: must be from 1 to 150, got 1000"),
                                  ("CFG scale", 100, "guidance_scale: must be from 0 to 30, got 100"),
                                  ("Batch size", 20, "num_images: must be from 1 to 8, got 20"),
                                  ("Height", 300, "height: must be a multiple of 8 from 64 to 256, got 300"),
                                  ("Seed", 3.5, "seed: must be a whole number, got 3.5")]:
        set_number(page, field, value)
        visible(page, ".studio-generate").click()
        wait_for_toast(page, message)
        set_number(page, field, {"Steps": 20, "CFG scale": 7, "Batch size": 1, "Height": 128, "Seed": -1}[field])
    box = page.get_by_label("number input for Steps").locator("visible=true").first
    box.fill("1000")
    box.press("Tab")
    assert box.input_value() == "1000"  # as typed, not quietly changed to 150
    assert len(registry.endings) == runs  # nothing ran
    assert progress_label(page) == "Ready" and visible(page, ".studio-generate").is_enabled()


def test_a_lora_trained_since_start_is_in_the_picker_after_a_reload(page, studio):
    from dreambooth_support import shapes_lora_file

    registry, _, root = studio
    shapes_lora_file(root / "models" / "fresh-lora.safetensors", seed=3)
    registry.refresh()  # what a finished DreamBooth run does
    page.reload()
    page.wait_for_selector(".studio-generate")
    page.get_by_label("LoRAs").locator("visible=true").first.click()
    assert page.get_by_role("option", name="fresh-lora").locator("visible=true").count() == 1


def test_a_drawn_sketch_generates_and_every_image_and_map_shows_whole(page):
    open_tab(page, "Adapters")
    draw_square(page)
    prompt_box(page).fill("a large red square in the center on a white background")
    visible(page, ".studio-generate").click()
    wait_for_label(page, "^Done: 1 image", timeout=90_000)
    assert visible(page, ".studio-fit-480").locator("img").count() == 1
    assert visible(page, ".studio-fit-280").locator("img").count() == 1  # the condition map used
    assert hidden_image_parts(page, ".studio-fit-480, .studio-fit-280") == []


def test_png_info_reads_an_upload_and_sends_it_to_text_to_image(page, tmp_path):
    text = ("small green star, bottom right, white background\nNegative prompt: blurry\nSteps: 12, Sampler: DPM++ 2M, "
            "Schedule type: Karras, CFG scale: 6.5, Seed: 4321, Size: 128x96, Model: shapes, Version: v1.10.1")
    info = PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (128, 96), "white").save(tmp_path / "a1111.png", pnginfo=info)
    open_tab(page, "PNG Info")
    page.locator("input[type=file]").locator("visible=false").first.set_input_files(str(tmp_path / "a1111.png"))
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value.includes('Seed: 4321'))")
    visible(page, "button:has-text('Send to Text to Image')").click()
    page.wait_for_timeout(1000)
    assert prompt_box(page).input_value() == "small green star, bottom right, white background"
    assert page.get_by_label("Sampler (scheduler)").locator("visible=true").first.input_value() == "DPM++ 2M"
    assert page.get_by_label("Schedule type").locator("visible=true").first.input_value() == "Karras"
    assert page.get_by_label("number input for Steps").locator("visible=true").first.input_value() == "12"
    assert page.get_by_label("number input for Height").locator("visible=true").first.input_value() == "96"


def test_history_lists_what_was_made_and_sends_it_on(page):
    generate_and_wait(page, "blue circle, bottom left, yellow background")
    seed = re.search(r"Seed: (\d+)", visible(page, ".studio-parameters textarea").input_value())[1]
    open_tab(page, "History")
    gallery = visible(page, ".studio-fit-640")
    gallery.locator("img").first.wait_for()
    assert f"seed {seed}" in gallery.inner_text()  # newest first
    gallery.locator("button.thumbnail-item").first.click()
    parameters = visible(page, ".studio-parameters textarea")
    assert parameters.input_value().startswith("blue circle, bottom left, yellow background")
    page.keyboard.press("Escape")  # leave the preview
    visible(page, "button:has-text('Send to PNG Info')").click()
    page.wait_for_function(f"() => [...document.querySelectorAll('textarea')].some(t => t.offsetParent && "
                           f"t.value.includes('Seed: {seed}'))")
    assert hidden_image_parts(page, ".studio-fit-640") == []


def test_closing_the_tab_mid_run_keeps_the_images(browser, studio):
    registry, url, root = studio
    page = open_page(browser, url)
    registry.step_seconds = 0.25
    registry.run_ended.clear()
    ended = len(registry.endings)
    before = set((root / "outputs").rglob("*.png"))
    prompt_box(page).fill("a small purple square at the top against orange")
    set_number(page, "Steps", 8)
    set_number(page, "Batch size", 2)
    visible(page, ".studio-generate").click()
    wait_for_label(page, r"^Image 1 / 2 · step [2-7] / 8")
    keep_screenshot(page, "closing-the-tab-mid-run")
    page.context.close()
    assert registry.run_ended.wait(timeout=60)
    assert registry.endings[ended] == ("finished", 16)
    made = set((root / "outputs").rglob("*.png")) - before
    assert len(made) == 2
    registry.step_seconds = 0.0
    again = open_page(browser, url)
    open_tab(again, "History")
    visible(again, ".studio-fit-640").locator("img").first.wait_for()
    captions = visible(again, ".studio-fit-640").inner_text()
    assert all(f"seed {path.stem.split('-')[1]}" in captions for path in made)
    keep_screenshot(again, "history-after-closing-the-tab")
    again.context.close()


def test_settings_and_styles_survive_a_reload(page):
    prompt_box(page).fill("a red circle")
    page.get_by_label("Negative prompt").locator("visible=true").first.fill("blurry")
    choose(page, "Sampler (scheduler)", "DDIM")
    set_number(page, "Steps", 13)
    visible(page, "button:has-text('Styles')").click()
    page.get_by_label("Save the prompts as a style named").fill("my look")
    page.get_by_role("button", name="Save style").click()
    wait_for_toast(page, "Saved the style 'my look'")
    page.wait_for_timeout(500)
    page.reload()
    page.wait_for_selector(".studio-generate")
    page.wait_for_timeout(1500)
    assert prompt_box(page).input_value() == "a red circle"
    assert page.get_by_label("Negative prompt").locator("visible=true").first.input_value() == "blurry"
    assert page.get_by_label("Sampler (scheduler)").locator("visible=true").first.input_value() == "DDIM"
    assert page.get_by_label("number input for Steps").locator("visible=true").first.input_value() == "13"
    prompt_box(page).fill("small green star")
    visible(page, "button:has-text('Styles')").click()
    choose(page, "Styles", "my look")
    page.get_by_role("button", name="Apply to prompt").click()
    page.wait_for_function("() => [...document.querySelectorAll('.studio-prompt textarea')]"
                           ".some(t => t.value === 'small green star, a red circle')")


def test_dreambooth_says_what_is_missing_and_where_stop_left_it(page, studio, tmp_path):
    from dreambooth_support import heart_images

    registry, _, root = studio
    open_tab(page, "DreamBooth")
    visible(page, ".studio-generate").click()
    wait_for_toast(page, "files: add 3 to 20 pictures of the subject")
    assert progress_label(page).startswith("Not trained: files:")  # not stuck at "encoding 0/1"
    pictures = sorted(str(p) for p in heart_images(tmp_path / "hearts", count=3).iterdir())
    page.locator("input[type=file]").locator("visible=false").first.set_input_files(pictures)
    page.wait_for_timeout(1000)
    set_number(page, "Steps", 300)
    set_number(page, "Resolution (0: the model's own)", 64)
    # the bundled model's defaults (prior preservation on, 4 pictures a step) made small: Stop is the point here
    page.get_by_label("Prior preservation").locator("visible=true").first.uncheck()
    set_number(page, "Batch size", 1)
    set_number(page, "Checkpoint every", 1000)
    page.get_by_role("textbox", name=re.compile("^Name")).locator("visible=true").first.fill("stop-test")
    visible(page, ".studio-generate").click()
    wait_for_label(page, r"^training [2-9]/300", timeout=90_000)
    visible(page, ".studio-stop").click()
    # feedback within seconds: "stopping: ..." while the step ends, or already where it stopped
    assert wait_for_label(page, "^(stopping|Stopped at step)", timeout=5_000)
    note = wait_for_label(page, "^Stopped at step", timeout=60_000)
    step = int(re.match(r"Stopped at step (\d+) of 300: checkpoint-(\d+) is saved in stop-test", note)[1])
    assert (root / "models" / "stop-test" / f"checkpoint-{step}").is_dir()
    assert "Press Train with the same name to continue" in wait_for_toast(page, f"Stopped at step {step}")
    assert visible(page, ".studio-generate").is_enabled()


def test_aspect_presets_and_the_swap_button_set_the_size(page):
    choose(page, "Aspect ratio", "16:9 (168x96)")
    width = page.get_by_label("number input for Width").locator("visible=true").first
    height = page.get_by_label("number input for Height").locator("visible=true").first
    width_is = "() => document.querySelector('input[aria-label=\"number input for Width\"]').value == '{}'"
    page.wait_for_function(width_is.format(168))
    assert (width.input_value(), height.input_value()) == ("168", "96")
    visible(page, "button:has-text('⇄')").click()
    page.wait_for_function(width_is.format(96))
    assert (width.input_value(), height.input_value()) == ("96", "168")


def test_skip_ends_the_current_image_and_the_run_goes_on(page, studio):
    registry, _, _ = studio
    registry.step_seconds = 0.25
    prompt_box(page).fill(PROMPT)
    set_number(page, "Steps", 10)
    set_number(page, "Batch count", 2)
    visible(page, ".studio-generate").click()
    wait_for_label(page, r"^Image 1 / 2 · step [2-6] / 10")
    visible(page, ".studio-skip").click()
    wait_for_label(page, r"^Image 2 / 2")
    wait_for_label(page, "^Done: 2 image")
    captions = visible(page, ".studio-fit-620").inner_text()
    assert re.search(r"skipped at step [2-9]", captions), captions
    assert "1 skipped (shown, not saved)" in visible(page, ".studio-parameters textarea").input_value()
