"""The GPU training configs load with every key known, and the accelerate launch configs agree
with them (precision, a distributed type this loop supports)."""

from pathlib import Path

import pytest
import yaml

from pgpt_ros.training.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["refcoco_7b.yaml", "refcoco_qwen05b.yaml"])
def test_refcoco_configs_load_and_ask_for_the_gpu_recipe(name):
    config = load_config(CONFIGS / name, [])
    train = config["train"]
    assert (train["mixed_precision"], train["weights_dtype"]) == ("bf16", "bfloat16")
    assert train["gradient_checkpointing"] and train["device"] == "auto"
    assert config["lora"] and config["freeze_vision"] and config["init"].startswith("data/")
    assert config["data"]["dataset"] == "refcoco"
    assert train["checkpoint_every"] < train["steps"]  # resumable under DDP


@pytest.mark.parametrize("name", ["ddp.yaml", "fsdp.yaml"])
def test_accelerate_configs_match_the_training_configs(name):
    launch = yaml.safe_load((CONFIGS / "accelerate" / name).read_text())
    assert launch["distributed_type"] in ("MULTI_GPU", "FSDP")
    assert (
        launch["mixed_precision"]
        == load_config(CONFIGS / "refcoco_7b.yaml", [])["train"]["mixed_precision"]
    )
    if launch["distributed_type"] == "FSDP":
        fsdp = launch["fsdp_config"]
        assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # the final model is gathered
        assert set(fsdp["fsdp_transformer_layer_cls_to_wrap"].split(",")) == {
            "LlamaDecoderLayer",
            "CLIPEncoderLayer",
        }
