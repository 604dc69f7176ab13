"""`python -m studio download --adapter ...` picks the weight files an adapter repository really has (no
network here: the repository listing and the download are stand-ins that record what was asked)."""
from __future__ import annotations

import huggingface_hub
import pytest

from studio.cli import main
from studio.commands.download import adapter_weight_patterns

SD14_REPO = [".gitattributes", "README.md", "config.json", "diffusion_pytorch_model.bin"]  # TencentARC *_sd14v1
SD15_REPO = [".gitattributes", "README.md", "config.json", "diffusion_pytorch_model.safetensors"]
SDXL_REPO = ["README.md", "config.json", "diffusion_pytorch_model.safetensors",
             "diffusion_pytorch_model.fp16.safetensors", "images/example.png"]


def test_bin_only_repositories_still_give_their_weights():
    assert adapter_weight_patterns(SD14_REPO, None) == ["diffusion_pytorch_model.bin"]


def test_safetensors_are_preferred_and_only_the_standard_file():
    assert adapter_weight_patterns(SD15_REPO + ["diffusion_pytorch_model.bin"], None) == \
        ["diffusion_pytorch_model.safetensors"]
    assert adapter_weight_patterns(SDXL_REPO, None) == ["diffusion_pytorch_model.safetensors"]
    assert adapter_weight_patterns(["config.json", "adapter.safetensors"], None) == ["*.safetensors"]


def test_a_subfolder_is_looked_at_alone():
    files = ["diffusion_pytorch_model.safetensors", "canny/config.json", "canny/diffusion_pytorch_model.bin"]
    assert adapter_weight_patterns(files, "canny") == ["canny/diffusion_pytorch_model.bin"]
    with pytest.raises(LookupError, match="no adapter weights"):
        adapter_weight_patterns(["canny/config.json", "depth/diffusion_pytorch_model.bin"], "canny")


def test_download_asks_for_the_config_and_the_weights_there_are(monkeypatch, capsys, tmp_path):
    asked = {}
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo_id, **_: SD14_REPO)

    def snapshot_download(repo_id, cache_dir=None, allow_patterns=None, **_):
        asked.update(repo_id=repo_id, allow_patterns=allow_patterns)
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert main(["download", "--adapter", "sd1/openpose"]) == 0
    assert asked == {"repo_id": "TencentARC/t2iadapter_openpose_sd14v1",
                     "allow_patterns": ["config.json", "diffusion_pytorch_model.bin"]}
    assert capsys.readouterr().out.strip() == str(tmp_path / "snapshot")


def test_download_without_network_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["download", "--adapter", "sd1/openpose"]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert line.startswith("error: could not download TencentARC/t2iadapter_openpose_sd14v1") and captured.out == ""
