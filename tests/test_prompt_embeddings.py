"""Textual-inversion files as AUTOMATIC1111 and diffusers write them, the embeddings folder and its listing."""
import pytest
import torch
from safetensors.torch import save_file

from pipelines.prompts.embeddings import EmbeddingError, EmbeddingLibrary, embedding_widths, read_embedding


def a1111_pt(path, vectors):
    """The layout of A1111's textual_inversion.py save(): the vectors are an nn.Parameter under "*"."""
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.nn.Parameter(vectors)},
                "name": path.stem, "step": 1500, "sd_checkpoint": "6ce0161689",
                "sd_checkpoint_name": "v1-5-pruned-emaonly"}, str(path))
    return path


class NotATensor:
    pass


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "embeddings"
    (root / "cat-toy").mkdir(parents=True)
    (root / "nested").mkdir()
    a1111_pt(root / "style.pt", torch.randn(4, 768))
    save_file({"emb_params": torch.randn(2, 768)}, str(root / "nested" / "bad-hands.safetensors"))
    save_file({"clip_l": torch.randn(3, 768), "clip_g": torch.randn(3, 1280)}, str(root / "xl-style.safetensors"))
    torch.save({"<cat-toy>": torch.randn(768)}, str(root / "cat-toy" / "learned_embeds.bin"))
    save_file({"<tiny>": torch.randn(1, 128)}, str(root / "tiny.safetensors"))
    (root / "notes.txt").write_text("not an embedding")
    torch.save({"string_to_param": {"*": NotATensor()}}, str(root / "evil.pt"))
    save_file({"a": torch.randn(1, 768), "b": torch.randn(1, 768)}, str(root / "two.safetensors"))
    return root


def test_every_format_reads_to_its_vectors(folder):
    style = read_embedding(folder / "style.pt")
    assert style.name == "style" and style.count == 4 and style.widths == (768,)
    assert style.vectors[""].dtype == torch.float32 and not style.vectors[""].requires_grad
    assert read_embedding(folder / "nested" / "bad-hands.safetensors").widths == (768,)
    xl = read_embedding(folder / "xl-style.safetensors")
    assert xl.widths == (768, 1280) and xl.count == 3 and "SDXL" in xl.describe()
    cat = read_embedding(folder / "cat-toy" / "learned_embeds.bin", "cat-toy")
    assert cat.count == 1 and cat.widths == (768,)  # diffusers' 1-D vector is one token
    with pytest.raises(EmbeddingError, match="weights-only loader"):  # a pickle is never run
        read_embedding(folder / "evil.pt")
    with pytest.raises(EmbeddingError, match="expected one tensor"):
        read_embedding(folder / "two.safetensors")


def test_the_folder_lists_names_and_filters_by_the_familys_encoder_width(folder):
    library = EmbeddingLibrary(folder)
    assert library.names() == ["bad-hands", "cat-toy", "evil", "style", "tiny", "two", "xl-style"]
    assert library.with_widths(embedding_widths("sd1")) == ["bad-hands", "cat-toy", "style"]
    assert library.with_widths(embedding_widths("sdxl")) == ["xl-style"]
    assert library.with_widths(embedding_widths("sd2")) == []
    assert library.with_widths(embedding_widths("shapes")) == ["tiny"]  # the bundled encoder is 128 wide
    assert library.mentioned_in("a photo, (STYLE:1.2)", "bad   hands") == ["style"]  # names are spelled whole
    with pytest.raises(EmbeddingError):
        library.get("evil")
    a1111_pt(folder / "later.pt", torch.randn(1, 768))
    assert "later" not in library.names()
    library.rescan()
    assert "later" in library.names()


def test_the_registry_lists_models_embeddings_and_rescans_on_refresh(tmp_path):
    from pipelines import PipelineRegistry

    (tmp_path / "models" / "embeddings").mkdir(parents=True)
    save_file({"emb_params": torch.randn(1, 128)}, str(tmp_path / "models" / "embeddings" / "dot.safetensors"))
    registry = PipelineRegistry(models_dir=tmp_path / "models", outputs_dir=tmp_path / "out", device="cpu",
                                dtype="float32", save_outputs=False)
    assert registry.embedding_names() == ["dot"] and registry.embedding_names("shapes") == ["dot"]
    assert registry.embedding_names("sd1") == []
    a1111_pt(tmp_path / "models" / "embeddings" / "ink.pt", torch.randn(2, 768))
    registry.refresh()
    assert registry.embedding_names() == ["dot", "ink"] and registry.embedding_names("sd1") == ["ink"]
    # The embeddings folder is not mistaken for a model or a LoRA.
    assert "embeddings" not in registry.model_names() and not registry.lora_names()
