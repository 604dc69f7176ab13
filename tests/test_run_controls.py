"""The pieces behind Generate / Skip / Stop and the progress text: per-tab runs, what a closed handler does
to its run, typed values passed on as typed, the speed and time left, Send-to wiring, one-line errors."""
from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

import gradio as gr
import pytest

from studio.fields import field_slider, is_field_slider, seed_number
from studio.results import StepClock
from studio.runner import WorkerRun
from studio.sessions import RunBook, run_key
from studio.widgets import checked_request, user_error


def slow_work(started: threading.Event, release: threading.Event, steps: list):
    def work(emit, should_stop):
        started.set()
        for step in range(1, 1000):
            if should_stop():
                raise RuntimeError("stopped")
            steps.append(step)
            emit(step)
            if release.wait(timeout=0.01):
                return "finished"
        return "finished"
    return work


def test_stop_reaches_only_its_own_tabs_run_and_a_queued_run_never_starts():
    book = RunBook()
    started, release, steps = threading.Event(), threading.Event(), []
    mine, other = ("session-a", "txt2img"), ("session-b", "txt2img")
    run = WorkerRun(slow_work(started, release, steps))
    book.queued(mine)
    assert book.start(mine, run)
    with run:
        assert started.wait(timeout=30)
        assert book.stop(other) == "idle" and not run.stopping  # another browser tab's Stop
        assert book.stop(("session-a", "adapters")) == "idle"  # the same browser, another studio tab
        assert book.stop(mine) == "running" and run.stopping
        with pytest.raises(RuntimeError, match="stopped"):
            list(run.updates())
    book.queued(other)
    assert book.stop(other) == "queued"
    assert not book.start(other, WorkerRun(slow_work(threading.Event(), threading.Event(), [])))
    assert run_key(None, "compare") == ("", "compare")


def test_skip_is_taken_once_per_press():
    run = WorkerRun(lambda emit, stop: None)
    run.skip()
    assert run.take_skip() and not run.take_skip()


def test_a_closed_handler_leaves_its_run_going_and_an_error_stops_it():
    """Gradio closes the handler's generator when the tab closes: the work goes on and finishes."""
    started, release, steps = threading.Event(), threading.Event(), []
    run = WorkerRun(slow_work(started, release, steps))

    def handler():
        with run:
            yield from run.updates()

    events = handler()
    assert next(events) == 1
    events.close()
    release.set()
    assert run.join(timeout=30) and not run.stopping  # it ended by finishing, never asked to stop
    failing = WorkerRun(slow_work(threading.Event(), threading.Event(), []))
    with pytest.raises(KeyError):
        with failing:
            next(failing.updates())
            raise KeyError("the handler failed")
    assert failing.stopping and failing.join(timeout=30)


def test_a_run_waits_for_a_device_slot_held_by_a_run_left_going():
    from studio.runner import DeviceBusy

    slots = threading.BoundedSemaphore(1)
    slots.acquire()  # a run left going by a closed tab
    run = WorkerRun(lambda emit, stop: "done", slots=slots)
    with run:
        events = run.updates()
        assert isinstance(next(events), DeviceBusy)
        slots.release()
        assert list(events) == [] and run.result == "done"


def test_the_progress_text_gives_speed_and_time_left():
    now = [100.0]
    clock = StepClock(now=lambda: now[0])
    clock.update(1, 10)
    assert clock.label() == "Step 1 / 10"  # no speed from one step
    now[0] += 1.0
    clock.update(3, 10)
    assert clock.label() == "Step 3 / 10 · 2.0 it/s · 0:04 left"
    now[0] += 40.0
    clock.update(4, 30)
    assert clock.label(steps_per_image=10) == "Image 1 / 3 · step 4 / 10 · 13.7 s/it · 5:55 left"  # 3 steps in 41 s
    clock.update(11, 30)
    assert clock.label(steps_per_image=10).startswith("Image 2 / 3 · step 1 / 10")


def test_typed_values_reach_the_form_as_typed_and_are_refused_by_name(registry):
    with gr.Blocks():
        steps = field_slider(1, 150, value=20, step=1, label="Steps")
        seed = seed_number()
    assert is_field_slider(steps) and steps.get_block_name() == "slider"
    assert (steps.minimum, steps.maximum) == (1, 150)
    # Gradio rebuilds a session's component from its class when an update changes it: the class must do it
    rebuilt = type(steps)(minimum=1, maximum=150, value=20)
    assert rebuilt.preprocess(1000) == 1000
    assert not (Path(__file__).parent.parent / "studio" / "fields.pyi").exists()  # importing wrote nothing
    assert steps.preprocess(1000) == 1000 and steps.preprocess(3.5) == 3.5  # Gradio's would refuse or round
    assert seed.preprocess(3.5) == 3.5
    base = {"prompt": "a red circle", "model": "shapes", "scheduler": "Euler a", "steps": 20, "guidance_scale": 7,
            "width": 128, "height": 128, "seed": -1, "num_images": 1}
    for field, typed, message in [("steps", 1000, "steps: must be from 1 to 150, got 1000"),
                                  ("guidance_scale", 100, "guidance_scale: must be from 0 to 30, got 100"),
                                  ("num_images", 20, "num_images: must be from 1 to 8, got 20"),
                                  ("height", 300, "height: must be a multiple of 8 from 64 to 256, got 300"),
                                  ("seed", 3.5, "seed: must be a whole number, got 3.5"),
                                  ("batch_count", 1000, "batch_count: must be from 1 to 100, got 1000")]:
        with pytest.raises(gr.Error) as refused:
            checked_request(registry, **{**base, field: typed})
        assert refused.value.message == message


def test_every_result_gets_a_send_to_button_for_every_other_tab(registry):
    from studio.ui import build_demo

    demo = build_demo(registry)
    buttons = [block for block in demo.blocks.values()
               if isinstance(block, gr.Button) and str(block.value).startswith("Send to ")]
    targets = Counter(str(button.value).removeprefix("Send to ") for button in buttons)
    # results in Text to Image, Image to Image, Inpaint, Adapters, Compare, PNG Info and History (7 rows); each
    # row has a button for every receiving tab but its own (History receives nothing)
    assert targets == {"Text to Image": 6, "Image to Image": 6, "Inpaint": 6, "Adapters": 6, "Compare Samplers": 6,
                       "PNG Info": 6, "DreamBooth": 7}


def test_a_refused_setting_is_one_line_in_the_log_and_no_traceback(caplog):
    with caplog.at_level(logging.WARNING, logger="studio"):
        error = user_error("steps: must be from 1 to 150, got 1000")
    assert error.print_exception is False and error.message == "steps: must be from 1 to 150, got 1000"
    assert [record.getMessage() for record in caplog.records] == [
        "Invalid setting: steps: must be from 1 to 150, got 1000"]
