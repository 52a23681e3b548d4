"""Asking for ``cuda`` where torch cannot give it fails at load with the fix named: a CPU-only
torch build (the fix: a CUDA build, JetPack's on a Jetson) is told apart from a machine without a
visible GPU and from a GPU index that does not exist."""

from __future__ import annotations

import pytest
import torch

from pgpt_ros.runtime import Perceiver
from pgpt_ros.runtime.loading import torch_device


def test_cuda_on_a_cpu_only_torch_build_names_the_fix(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ValueError, match="CPU-only build; install a CUDA build of torch"):
        torch_device("cuda")
    with pytest.raises(ValueError, match="JetPack's torch"):
        Perceiver.load("", device="cuda")  # the node's configure step goes through here


def test_cuda_build_without_a_visible_gpu(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU is visible"):
        torch_device("cuda:0")


def test_a_gpu_index_that_does_not_exist(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="only 1 GPU"):
        torch_device("cuda:3")
    assert torch_device("cuda:0") == torch.device("cuda", 0)


def test_cpu_and_unknown_devices():
    assert torch_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        torch_device("gpu")
