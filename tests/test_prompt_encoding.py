"""pipelines.prompts.encode_prompts against diffusers' encode_prompt and transformers' own CLIP outputs, on the
bundled model and tiny SD 1.x / 2.x / XL models with the real tokenizers (no pictures: text encoders only)."""
import pytest
import torch

from dreambooth_support import load_shapes, pipeline_from, tiny_components
from pipelines.catalog import ModelSpec
from pipelines.components import LoadedModel
from pipelines.prompts import Embedding, encode_prompts
from pipelines.prompts.encoder import text_model
from pipelines.requests import InvalidRequest

FAMILIES = ("shapes", "sd1", "sd2", "sdxl")
PROMPTS = [("a large red circle in the top left on a blue background", "blurry, green"), ("a red circle", ""),
           ("", ""), ("small green star, bottom right, white background", "")]


@pytest.fixture(scope="module")
def models():
    out = {}
    for family in FAMILIES:
        components = load_shapes() if family == "shapes" else tiny_components(family)
        loaded = LoadedModel(ModelSpec(f"tiny-{family}", family, "memory"), components, {}, torch.device("cpu"),
                             torch.float32)
        out[family] = (loaded, pipeline_from(components))
    return out


def diffusers_kwargs(pipe, family, prompt, negative, guidance):
    """What the studio fed the pipeline before: its own encode_prompt (empty negative prompt = None)."""
    with torch.inference_mode():
        if family == "sdxl":
            pos, neg, pooled, neg_pooled = pipe.encode_prompt(
                prompt=prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=guidance,
                negative_prompt=negative or None)
            out = {"prompt_embeds": pos, "pooled_prompt_embeds": pooled}
            if guidance:
                out.update(negative_prompt_embeds=neg, negative_pooled_prompt_embeds=neg_pooled)
            return out
        pos, neg = pipe.encode_prompt(prompt, "cpu", 1, guidance, negative_prompt=negative or None)
        return {"prompt_embeds": pos, **({"negative_prompt_embeds": neg} if guidance else {})}


def assert_bitwise(ours: dict, reference: dict):
    assert set(ours) == set(reference)
    for key in reference:
        assert ours[key].dtype == reference[key].dtype and torch.equal(ours[key], reference[key]), key


@pytest.mark.parametrize("family", FAMILIES)
def test_a_plain_prompt_encodes_bitwise_as_diffusers_did(models, family):
    loaded, pipe = models[family]
    for prompt, negative in PROMPTS:
        for guidance in (True, False):
            encoded = encode_prompts(loaded, prompt, negative, guidance=guidance)
            assert encoded.chunks == 1
            assert_bitwise(encoded.kwargs, diffusers_kwargs(pipe, family, prompt, negative, guidance))
    # (x:1.0) is x, and so is an unmatched bracket-free colon
    assert_bitwise(encode_prompts(loaded, "a (red:1.0) circle", "", guidance=True).kwargs,
                   diffusers_kwargs(pipe, family, "a red circle", "", True))


def clip_reference(loaded, text, skip):
    """transformers' own forward pass: hidden_states[-skip] through the final layer norm."""
    tokenizer, encoder = loaded.components["tokenizer"], loaded.components["text_encoder"]
    ids = tokenizer(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = encoder(ids, output_hidden_states=True)
        return out.last_hidden_state if skip == 1 else encoder.final_layer_norm(out.hidden_states[-skip])


@pytest.mark.parametrize("family", ("shapes", "sd1", "sd2"))
def test_clip_skip_reads_the_nth_last_layer_through_the_final_layer_norm(models, family):
    loaded, _ = models[family]
    layers = loaded.components["text_encoder"].config.num_hidden_layers
    text = "a red circle on a blue background"
    for skip in range(1, layers + 1):
        ours = encode_prompts(loaded, text, "", guidance=False, clip_skip=skip).kwargs["prompt_embeds"]
        assert torch.equal(ours, clip_reference(loaded, text, skip)), skip
    with pytest.raises(InvalidRequest, match=f"^clip_skip: must be from 1 to {layers} for 'tiny-{family}'"):
        encode_prompts(loaded, text, "", guidance=False, clip_skip=layers + 1)


def test_sdxl_keeps_its_penultimate_layers_whatever_clip_skip_says(models):
    loaded, pipe = models["sdxl"]
    for skip in (2, 12):  # as A1111 does (its "Clip skip SDXL" option aside)
        assert_bitwise(encode_prompts(loaded, "a red circle", "blurry", guidance=True, clip_skip=skip).kwargs,
                       diffusers_kwargs(pipe, "sdxl", "a red circle", "blurry", True))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_long_prompt_is_encoded_chunk_by_chunk_and_the_negative_one_padded(models, family):
    loaded, pipe = models[family]
    word = "red" if family != "shapes" else "circle"  # one token each in these vocabularies
    long_prompt = " ".join([word] * 150)
    half = " ".join([word] * 75)
    encoded = encode_prompts(loaded, long_prompt, "blurry" if family == "sdxl" else "", guidance=True)
    kwargs = encoded.kwargs
    assert encoded.chunks == 2 and kwargs["prompt_embeds"].shape[1] == 154
    assert kwargs["negative_prompt_embeds"].shape == kwargs["prompt_embeds"].shape
    reference = diffusers_kwargs(pipe, family, half, "blurry" if family == "sdxl" else "", True)
    for k in range(2):  # each chunk is the 75-token prompt encoded alone
        assert torch.equal(kwargs["prompt_embeds"][:, 77 * k:77 * (k + 1)], reference["prompt_embeds"])
    assert torch.equal(kwargs["negative_prompt_embeds"][:, :77], reference["negative_prompt_embeds"])
    empty = diffusers_kwargs(pipe, family, "", "", False)["prompt_embeds"]
    assert torch.equal(kwargs["negative_prompt_embeds"][:, 77:], empty)  # padded with the empty prompt
    if family == "sdxl":  # pooled from the first chunk; an empty negative prompt is zeros all along
        assert torch.equal(kwargs["pooled_prompt_embeds"], reference["pooled_prompt_embeds"])
        zeros = encode_prompts(loaded, long_prompt, "", guidance=True).kwargs
        assert not zeros["negative_prompt_embeds"].any() and zeros["negative_prompt_embeds"].shape[1] == 154
        assert not zeros["negative_pooled_prompt_embeds"].any()
    # A long negative prompt pads the prompt instead.
    flipped = encode_prompts(loaded, "blurry", long_prompt, guidance=True).kwargs
    assert flipped["prompt_embeds"].shape[1] == 154 and torch.equal(flipped["prompt_embeds"][:, 77:], empty)


def test_break_gives_each_part_its_own_chunk(models):
    loaded, pipe = models["sd1"]
    kwargs = encode_prompts(loaded, "a red circle BREAK on a blue background", "", guidance=False).kwargs
    parts = [diffusers_kwargs(pipe, "sd1", text, "", False)["prompt_embeds"]
             for text in ("a red circle", "on a blue background")]
    assert torch.equal(kwargs["prompt_embeds"], torch.cat(parts, dim=1))


@pytest.mark.parametrize("family", ("shapes", "sdxl"))  # (a random tiny SD 1's final norm has mean ~1e-8)
def test_a_weight_scales_its_tokens_then_the_chunk_keeps_its_mean(models, family):
    """A1111's "Original" emphasis (modules/sd_emphasis.py), per text encoder."""
    loaded, _ = models[family]
    plain = encode_prompts(loaded, "a red circle", "", guidance=False).kwargs["prompt_embeds"]
    weighted = encode_prompts(loaded, "a (red:1.6) circle", "", guidance=False).kwargs["prompt_embeds"]
    encoders = ("text_encoder", "text_encoder_2") if family == "sdxl" else ("text_encoder",)
    widths = [loaded.components[name].config.hidden_size for name in encoders]  # each encoder's part alone
    start = 0
    for width in widths:
        z, w = plain[..., start:start + width], weighted[..., start:start + width]
        expected = z.clone()
        expected[:, 2] *= 1.6  # start token, "a", "red"
        expected = expected * (z.mean() / expected.mean())
        assert torch.allclose(w, expected, rtol=1e-5, atol=1e-6)
        assert abs(w.mean() - z.mean()) < 1e-5 * z.abs().mean() and not torch.equal(w, z)
        start += width


def token_vectors(encoder, tokenizer, words):
    ids = tokenizer(words, add_special_tokens=False).input_ids
    return text_model(encoder).embeddings.token_embedding.weight[ids].detach().clone()


@pytest.mark.parametrize("family", ("shapes", "sdxl"))
def test_an_embedding_made_of_word_vectors_encodes_as_those_words(models, family):
    loaded, _ = models[family]
    c = loaded.components
    if family == "sdxl":
        vectors = {"clip_l": token_vectors(c["text_encoder"], c["tokenizer"], "red circle"),
                   "clip_g": token_vectors(c["text_encoder_2"], c["tokenizer_2"], "red circle")}
    else:
        vectors = {"": token_vectors(c["text_encoder"], c["tokenizer"], "red circle")}
    library = {"myduo": Embedding("myduo", "myduo.pt", vectors)}
    for prompt, negative in (("a myduo on white", "myduo"), ("a (myduo:1.3) on white", "")):
        ours = encode_prompts(loaded, prompt, negative, guidance=True, embeddings=library).kwargs
        words = encode_prompts(loaded, prompt.replace("myduo", "red circle"), negative.replace("myduo", "red circle"),
                               guidance=True).kwargs
        assert_bitwise(ours, words)
    without = encode_prompts(loaded, "a myduo on white", "", guidance=False).kwargs["prompt_embeds"]
    assert not torch.equal(without, words["prompt_embeds"])


def test_an_embedding_of_the_wrong_width_is_refused_naming_the_field(models):
    loaded, _ = models["shapes"]
    sd1_style = {"style": Embedding("style", "style.pt", {"": torch.zeros(2, 768)})}
    with pytest.raises(InvalidRequest, match=r"^negative_prompt: embedding 'style' is 768 wide, but 'tiny-shapes' "
                                             r"\(shapes\) needs 128-wide token vectors"):
        encode_prompts(loaded, "a circle", "style", guidance=True, embeddings=sd1_style)
    encode_prompts(loaded, "a circle", "stylish", guidance=True, embeddings=sd1_style)  # not its token: unused
    sdxl, _ = models["sdxl"]
    with pytest.raises(InvalidRequest, match=r"^prompt: embedding 'style' is 768 wide, but 'tiny-sdxl' \(sdxl\) "
                                             r"needs an SDXL embedding"):
        encode_prompts(sdxl, "a style circle", "", guidance=False, embeddings=sd1_style)
