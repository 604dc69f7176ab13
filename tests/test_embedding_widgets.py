"""The Text to Image tab's embedding pickers: they list what fits the chosen model and add a name to a prompt."""
import gradio as gr
import torch
from safetensors.torch import save_file

from pipelines import PipelineRegistry
from studio.embedding_widgets import appended, embedding_choices
from studio.ui import build_demo


def test_pickers_list_fitting_embeddings_append_names_and_follow_the_model(tmp_path):
    folder = tmp_path / "models" / "embeddings"
    folder.mkdir(parents=True)
    save_file({"emb_params": torch.randn(1, 128)}, str(folder / "dot.safetensors"))  # the shapes encoder's width
    save_file({"emb_params": torch.randn(1, 768)}, str(folder / "sd1-style.safetensors"))
    registry = PipelineRegistry(models_dir=tmp_path / "models", outputs_dir=tmp_path / "out", device="cpu",
                                dtype="float32", save_outputs=False)
    demo = build_demo(registry)
    pickers = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and str(b.label).startswith("Embedding")]
    assert sorted(p.label for p in pickers) == ["Embedding → negative prompt", "Embedding → prompt"]
    assert all([choice[1] for choice in p.choices] == ["dot"] for p in pickers)

    add = next(fn for fn in demo.fns.values() if fn.name == "add" and fn.inputs[1] is pickers[0])
    text, cleared = add.fn("a red circle", "dot")
    assert text == "a red circle dot" and cleared.value is None
    assert appended("", "dot") == "dot" and appended("a, ", "dot") == "a, dot"

    assert embedding_choices(registry, "sd15") == ["sd1-style"]  # listed by family, weights or not
    assert embedding_choices(registry, "no/such/model") is None
    save_file({"emb_params": torch.randn(1, 128)}, str(folder / "ring.safetensors"))
    relist = [fn for fn in demo.fns.values() if fn.name == "<lambda>" and fn.outputs == pickers]
    assert relist, "the refresh button relists the embeddings"
    update, _ = relist[0].fn("shapes")
    assert update.choices == [("dot", "dot"), ("ring", "ring")]
