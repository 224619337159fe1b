"""Device and precision choice of the executor."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from panini_video.errors import UsageError
from panini_video.restore import executor
from panini_video.restore.executor import cpu_has_native_bf16, resolve_device, resolve_precision

CPUINFO = "processor\t: {n}\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\n"


def cpuinfo(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text("".join(CPUINFO.format(n=n, extra=extra) for n in range(2)))
    return str(path)


@pytest.mark.parametrize(("extra", "native"), [("", False), ("avx512_bf16", True), ("amx_tile amx_bf16", True)])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, extra: str, native: bool) -> None:
    assert cpu_has_native_bf16(cpuinfo(tmp_path, extra)) is native
    assert cpu_has_native_bf16(str(tmp_path / "absent")) is False


def test_auto_precision_on_the_cpu_follows_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(executor, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(executor, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("fp16", cpu) == "fp16"  # asked for: given, whatever is fastest
    with pytest.raises(UsageError):
        resolve_precision("int8", cpu)


def test_devices_this_machine_lacks_are_usage_errors() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            resolve_device("cuda")
