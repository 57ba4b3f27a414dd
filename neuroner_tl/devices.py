"""Where training runs: one CPU or GPU, several devices of one machine, several machines.

``Devices(spec, mixed_precision)`` turns the CLI's ``--devices`` into a ``tf.distribute`` strategy:

- ``auto`` (default): one device, the first GPU when TensorFlow sees one, else the CPU;
- ``cpu`` / ``gpu``: that kind of device, one of it;
- ``N`` (a number), ``gpu:0,1`` or ``cpu:0,1``: ``MirroredStrategy`` over the first N GPUs (CPUs where
  there is no GPU), or over the devices listed. Several CPU devices exist only when the process split
  its CPU into logical devices (``split_cpu``), which is how the tests check distribution on one machine;
- ``multi-worker``: ``MultiWorkerMirroredStrategy``, one process per machine, each told the cluster by
  the ``TF_CONFIG`` environment variable (README, "Training on several GPUs or machines").

The BiLSTMs run TensorFlow's fused CPU loop on CPUs and Keras's cuDNN LSTM on GPUs
(``lstm_backend``). ``mixed_precision`` computes in float16 on GPUs (with loss scaling) and bfloat16
on CPUs; the emission scores and the CRF stay float32, and the weights are float32 throughout.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import List, Optional

import tensorflow as tf

from .errors import NeuronerError

KINDS = ("auto", "cpu", "gpu", "multi-worker")


@dataclasses.dataclass(frozen=True)
class Devices:
    spec: str = "auto"
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        self.device_names()  # validate early: a bad --devices is a one-line error before any work

    # which devices ---------------------------------------------------------------------------
    def device_names(self) -> Optional[List[str]]:
        """The devices to mirror over, or None for one device (``auto``/``cpu``/``gpu``) or multi-worker."""
        spec = str(self.spec).strip().lower()
        if spec in ("auto", "cpu", "gpu", "multi-worker", "1"):
            if spec == "gpu" and not _gpus():
                raise NeuronerError("--devices gpu: TensorFlow sees no GPU on this machine (use --devices cpu)")
            return None
        if spec.isdigit():
            count = int(spec)
            if count < 1:
                raise NeuronerError("--devices: the number of devices must be at least 1")
            kind = "GPU" if _gpus() else "CPU"
            available = tf.config.list_logical_devices(kind)
            if count > len(available):
                raise NeuronerError(f"--devices {count}: this machine has {len(available)} {kind} device(s)"
                                    + ("" if kind == "GPU" else "; CPUs count once unless split into logical devices"))
            return [d.name for d in available[:count]]
        kind, _, numbers = spec.partition(":")
        if kind in ("gpu", "cpu") and numbers:
            try:
                indices = [int(n) for n in numbers.split(",") if n.strip()]
            except ValueError:
                raise NeuronerError(f"--devices {self.spec}: expected {kind}:0,1,...") from None
            available = tf.config.list_logical_devices(kind.upper())
            missing = [i for i in indices if i >= len(available) or i < 0]
            if missing or not indices:
                raise NeuronerError(f"--devices {self.spec}: this machine has {len(available)} {kind.upper()} "
                                    f"device(s) (0..{len(available) - 1})")
            return [available[i].name for i in indices]
        raise NeuronerError(f"--devices {self.spec}: expected auto, cpu, gpu, a number of devices, gpu:0,1, "
                            f"cpu:0,1 or multi-worker")

    @property
    def uses_gpu(self) -> bool:
        names = self.device_names()
        spec = str(self.spec).strip().lower()
        if spec == "multi-worker":
            self.strategy()  # before anything asks TensorFlow which devices it has
        if names is not None:
            return any("GPU" in name.upper() for name in names)
        return spec == "gpu" or (spec in ("auto", "1", "multi-worker") and bool(_gpus()))

    def strategy(self) -> tf.distribute.Strategy:
        """The strategy to build and train the network under (the default one for ``auto``). One per
        process and spec: TensorFlow allows a single ``MultiWorkerMirroredStrategy``, made before its
        runtime starts (the CLI makes it first thing; from Python, call this at the start)."""
        spec = str(self.spec).strip().lower()
        if spec == "multi-worker":
            if "TF_CONFIG" not in os.environ:
                raise NeuronerError("--devices multi-worker needs the TF_CONFIG environment variable "
                                    "(see the README)")
            try:
                json.loads(os.environ["TF_CONFIG"])
            except json.JSONDecodeError as error:
                raise NeuronerError(f"TF_CONFIG is not valid JSON ({error})") from None
            return _multi_worker_strategy()
        names = self.device_names()
        if names is not None and len(names) > 1:
            return _mirrored_strategy(tuple(names))
        if names is not None:
            return tf.distribute.OneDeviceStrategy(names[0])
        if spec == "cpu" and _gpus():
            return tf.distribute.OneDeviceStrategy("/cpu:0")
        return tf.distribute.get_strategy()

    @property
    def worker(self) -> tuple:
        """(this process's task type, its index) in a multi-worker cluster; ("chief", 0) otherwise."""
        if str(self.spec).strip().lower() != "multi-worker":
            return "chief", 0
        try:
            task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
        except json.JSONDecodeError:
            return "chief", 0
        return task.get("type", "worker"), int(task.get("index", 0))

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the model and its checkpoints: the chief, or worker 0 of a
        cluster without one (TensorFlow's convention)."""
        kind, index = self.worker
        if kind == "chief":
            return True
        try:
            cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        except json.JSONDecodeError:
            cluster = {}
        return kind == "worker" and index == 0 and "chief" not in cluster

    def is_default(self) -> bool:
        """One device, chosen by TensorFlow, full precision: the tagger's own network can train as it is."""
        if self.mixed_precision:
            return False
        spec = str(self.spec).strip().lower()
        return spec in ("auto", "1") or (spec == "cpu" and not _gpus())

    @property
    def lstm_backend(self) -> str:
        return "keras" if self.uses_gpu else "fused"

    @property
    def dtype_policy(self) -> Optional[str]:
        if not self.mixed_precision:
            return None
        return "mixed_float16" if self.uses_gpu else "mixed_bfloat16"

    def describe(self) -> str:
        names = self.device_names()
        where = ", ".join(names) if names else ("every worker of TF_CONFIG" if self.spec == "multi-worker" else
                                                "the first GPU" if self.uses_gpu else "the CPU")
        precision = f", mixed precision ({self.dtype_policy})" if self.mixed_precision else ""
        return f"devices: {where}{precision}; BiLSTMs: {'cuDNN' if self.lstm_backend == 'keras' else 'fused CPU loop'}"


def _gpus():
    return tf.config.list_logical_devices("GPU")


@functools.lru_cache(maxsize=None)
def _mirrored_strategy(names: tuple) -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy(devices=list(names))


@functools.lru_cache(maxsize=1)
def _multi_worker_strategy() -> tf.distribute.Strategy:
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:  # "Collective ops must be configured at program startup"
        raise NeuronerError(f"--devices multi-worker: {error}; create Devices('multi-worker').strategy() before "
                            f"TensorFlow runs anything") from None


def split_cpu(count: int) -> None:
    """Make the CPU ``count`` logical devices (``/cpu:0`` ... ); must run before TensorFlow starts its
    runtime (before the first op), and is how ``MirroredStrategy`` is tested on a machine without GPUs."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
