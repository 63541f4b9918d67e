"""The ``llm:`` section of a site config: how a node serves its LLM.

One pydantic model, :class:`LLMSettings`, validated when the site config loads
(``sedscale.engines.site.SiteConfig.llm``), so a typo in a site file fails before any job is
submitted rather than on a compute node an hour later. Everything a node needs to start its vLLM
instances is here as data; the code that turns it into processes lives in
:mod:`sedscale.serve.instances` and never branches on a machine's name.

Paths may contain ``$VARS`` / ``~`` (``/lustre/orion/$SEDSCALE_PROJECT/...``, ``/mnt/bb/$USER``):
they are expanded on the node, at start time, by :meth:`LLMSettings.resolved_model_path` and
friends, because the login node that validates the file may not have the same environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

Accelerator = Literal["cpu", "nvidia", "amd", "intel"]

#: The environment variable that pins a process to its devices, per accelerator kind. On AMD only
#: ``HIP_VISIBLE_DEVICES`` is set (OLCF's recipe): setting ``ROCR_VISIBLE_DEVICES`` to the same id
#: as well would make HIP index *into* the ROCR-visible list and find no device.
DEFAULT_DEVICE_ENV: dict[str, tuple[str, ...]] = {
    "cpu": (),
    "nvidia": ("CUDA_VISIBLE_DEVICES",),
    "amd": ("HIP_VISIBLE_DEVICES",),
    "intel": ("ZE_AFFINITY_MASK",),
}


def expand_path(value: str) -> Path:
    """``$VARS`` and ``~`` expanded; an unset variable is left visible so the error names it."""
    return Path(os.path.expandvars(os.path.expanduser(value)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContainerSettings(_Strict):
    """Run each vLLM instance inside a container (OLCF runs vLLM on Frontier from ``rocm/vllm``).

    The instance command becomes ``<runtime> exec <options> --bind b1 ... <image> <python> -m
    vllm.entrypoints.openai.api_server ...``; device variables are passed through the environment
    (apptainer forwards the host environment by default).
    """

    runtime: Literal["apptainer", "singularity", "podman-hpc", "docker"] = "apptainer"
    image: str = Field(description="Image file or URI, e.g. /lustre/orion/<proj>/images/vllm-rocm.sif")
    options: list[str] = Field(
        default_factory=lambda: ["--fakeroot", "--writable-tmpfs"],
        description="Options given to `<runtime> exec` before the image.",
    )
    binds: list[str] = Field(default_factory=list, description="Host paths to bind (`src[:dst]`).")
    python: str = Field("python3", description="The Python inside the image that has vLLM.")


class StagingSettings(_Strict):
    """Copy the weights to node-local storage before starting (Frontier: ``/mnt/bb/$USER``).

    Hundreds of nodes reading 16 GB each from Lustre at once is slower and harsher on the file
    system than one copy per node onto NVMe; ALCF gives the same advice for ``/tmp`` on Polaris.
    """

    dest: str = Field(description="Node-local directory; the model folder is copied inside it.")
    skip_if_present: bool = Field(True, description="Reuse an existing complete copy (same file sizes).")


class RestartSettings(_Strict):
    """How a crashed instance is restarted: exponential backoff, then give up."""

    max_restarts: int = Field(5, ge=0, description="Restarts per instance before it is left down.")
    backoff_initial_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)


class LLMSettings(_Strict):
    """How one node serves the LLM: k vLLM instances on localhost, one per device group.

    ``instances_per_node × tensor_parallel_size`` devices are used; instance ``i`` gets devices
    ``[i*tp, (i+1)*tp)`` (or the ids listed in ``devices``) through ``device_env`` and listens on
    ``base_port + i``. For an 8B model data parallelism beats tensor parallelism whenever the model
    fits on one device, hence ``tensor_parallel_size: 1`` on every shipped site.
    """

    backend: Literal["vllm"] = Field("vllm", description="Only vLLM is served by sedscale today.")
    model_path: str = Field(description="Weights directory on the machine's file system ($VARS allowed).")
    served_model_name: str = Field(description="The model name clients send (e.g. AstroMLab/AstroSage-8B).")
    accelerator: Accelerator = "nvidia"
    instances_per_node: int = Field(1, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    devices: Optional[list[str]] = Field(
        None,
        description="GPU ids to hand out, in order (default 0..instances*tp-1); on CPU, one "
        "VLLM_CPU_OMP_THREADS_BIND core list per instance (default: the cores split evenly).",
    )
    device_env: Optional[list[str]] = Field(
        None, description="Variables that pin an instance to its devices; default per accelerator."
    )
    host: str = Field("127.0.0.1", description="Bind address; loopback unless other nodes must reach it.")
    base_port: int = Field(8100, ge=1024, le=65535)
    max_num_seqs: int = Field(256, ge=1)
    max_model_len: Optional[int] = Field(None, ge=16)
    gpu_memory_utilization: Optional[float] = Field(0.9, gt=0, le=1, description="Ignored on CPU.")
    dtype: Optional[str] = Field(None, description="e.g. bfloat16; None lets vLLM choose.")
    enable_prefix_caching: bool = True
    enforce_eager: bool = False
    structured_outputs_backend: Literal["auto", "xgrammar", "guidance", "outlines", "lm-format-enforcer"] = (
        "xgrammar"
    )
    disable_any_whitespace: bool = Field(
        True, description="No free whitespace in JSON replies: a weak model cannot pad forever."
    )
    api_key_env: Optional[str] = Field(
        "SEDSCALE_LLM_API_KEY",
        description="Variable holding the API key; if unset at start a random key is generated. "
        "None serves without a key (only sensible on a private loopback).",
    )
    cpu_kvcache_space_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE on CPU.")
    python: Optional[str] = Field(None, description="Python with vLLM; default the running one.")
    extra_args: list[str] = Field(default_factory=list, description="Passed verbatim to the server.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for every instance.")
    container: Optional[ContainerSettings] = None
    staging: Optional[StagingSettings] = None
    startup_timeout_s: float = Field(900.0, gt=0, description="Deadline for /health after launch.")
    restart: RestartSettings = Field(default_factory=RestartSettings)

    @model_validator(mode="after")
    def _devices_cover_instances(self) -> "LLMSettings":
        if self.devices is not None and self.accelerator == "cpu":
            if len(self.devices) < self.instances_per_node:
                raise ValueError(f"devices lists {len(self.devices)} core lists for {self.instances_per_node} instances")
        if self.devices is not None and self.accelerator != "cpu":
            need = self.instances_per_node * self.tensor_parallel_size
            if len(self.devices) < need:
                raise ValueError(
                    f"devices lists {len(self.devices)} ids but instances_per_node × "
                    f"tensor_parallel_size needs {need}"
                )
        if self.base_port + self.instances_per_node - 1 > 65535:
            raise ValueError("base_port + instances_per_node - 1 exceeds 65535")
        return self

    # -- derived values, used by the instance manager and the accountant -------------------------

    @property
    def devices_per_instance(self) -> int:
        """Devices one instance holds; 0 on CPU, so GPU-seconds are 0 there by construction."""
        return 0 if self.accelerator == "cpu" else self.tensor_parallel_size

    @property
    def devices_per_node(self) -> int:
        """Devices the node's service holds while it runs (the 'allocated' side of accounting)."""
        return self.devices_per_instance * self.instances_per_node

    def device_env_vars(self) -> tuple[str, ...]:
        """Variables that pin an instance to its devices."""
        if self.device_env is not None:
            return tuple(self.device_env)
        return DEFAULT_DEVICE_ENV[self.accelerator]

    def instance_devices(self, index: int) -> list[str]:
        """The device ids instance ``index`` is pinned to (empty on CPU)."""
        if self.accelerator == "cpu":
            return []
        tp = self.tensor_parallel_size
        pool = self.devices or [str(i) for i in range(self.instances_per_node * tp)]
        return list(pool[index * tp : (index + 1) * tp])

    def port(self, index: int) -> int:
        """The port instance ``index`` listens on."""
        return self.base_port + index

    def resolved_model_path(self) -> Path:
        """The weights directory with ``$VARS``/``~`` expanded on this node."""
        return expand_path(self.model_path)
