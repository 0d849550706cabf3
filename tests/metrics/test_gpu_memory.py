"""GPU memory series on a CUDA machine: what PyTorch holds, read at scrape time."""

from __future__ import annotations

import pytest

from workers.metrics import GpuMemory

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_used_and_peak_follow_the_tensors_held() -> None:
    tensor = torch.ones(64 * 1024 * 1024, dtype=torch.uint8, device="cuda:0")  # 64 MiB
    families = {family.name: family for family in GpuMemory().collect()}
    used = families["aigc_gpu_memory_used_bytes"].samples[0]
    peak = families["aigc_gpu_memory_peak_bytes"].samples[0]
    total = families["aigc_gpu_memory_total_bytes"].samples[0]
    assert used.labels == {"device": "0"}
    assert tensor.numel() <= used.value <= peak.value <= total.value
    del tensor
    torch.cuda.empty_cache()
    after = {family.name: family for family in GpuMemory().collect()}
    assert after["aigc_gpu_memory_used_bytes"].samples[0].value < used.value
    assert after["aigc_gpu_memory_peak_bytes"].samples[0].value == peak.value
