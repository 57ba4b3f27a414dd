"""Where training runs: tf.distribute on one machine (the CPU split into two logical devices), the
LSTM that GPUs use, mixed precision, and the --devices option."""

import json
import subprocess
import sys

import numpy as np
import pytest

from neuroner_tl.errors import NeuronerError

from conftest import free_port, invoke

MIRRORED = r"""
import json, sys
from neuroner_tl.devices import Devices, split_cpu
split_cpu(2)  # before TensorFlow's runtime starts
from neuroner_tl import api
from neuroner_tl.config import Hyperparameters
from neuroner_tl.datasets import generate_corpus
from neuroner_tl.model import weight_arrays

train, dev = generate_corpus("A", 192, seed=3), generate_corpus("A", 48, seed=4)
# dropout 0: each replica draws its own dropout masks, so only without dropout are the runs comparable step by step
hp = Hyperparameters(token_embedding_dim=16, token_lstm_units=16, char_lstm_units=8, char_embedding_dim=8,
                     max_epochs=int(sys.argv[1]), patience=100, batch_size=16, dropout=0.0, learning_rate=0.005)
result = {}
for spec in ("auto", "cpu:0,1"):
    trained = api.train(train, None, dev=dev, hp=hp, verbose=False, devices=Devices(spec))
    weights = weight_arrays(trained.tagger.network)
    result[spec] = {"losses": [r["loss"] for r in trained.tagger.history], "dev_f1": trained.dev_report.f1,
                    "transitions": weights["crf/transitions"].tolist()}
print(json.dumps(result))
"""


def test_mirrored_training_on_two_devices_follows_the_one_device_run():
    """MirroredStrategy over two logical CPUs, the same global batch: each step's gradient is the sum of
    the replicas' halves (clipped after that sum, as on one device), so the loss trajectory and the
    model are those of one device, up to float rounding."""
    completed = subprocess.run([sys.executable, "-c", MIRRORED, "6"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    one, two = result["auto"], result["cpu:0,1"]
    assert len(one["losses"]) == len(two["losses"]) == 6
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=2e-3)
    assert one["losses"][-1] < one["losses"][0] / 2, "the runs must actually learn for the comparison to mean much"
    assert two["dev_f1"] == pytest.approx(one["dev_f1"], abs=2.0)
    np.testing.assert_allclose(two["transitions"], one["transitions"], atol=5e-3)


def test_the_keras_lstm_gpus_use_computes_the_fused_cpu_loop():
    """On a GPU the BiLSTMs run Keras's LSTM (cuDNN); here the same layer on CPU: same weights,
    same outputs and gradients as the fused loop."""
    import tensorflow as tf

    from neuroner_tl.bilstm import BiLSTM

    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(3, 6, 5)).astype(np.float32))
    mask = tf.sequence_mask([6, 2, 4], 6)
    for return_sequences in (True, False):
        fused = BiLSTM(4, return_sequences=return_sequences, backend="fused")
        keras_lstm = BiLSTM(4, return_sequences=return_sequences, backend="keras")
        fused.build((None, None, 5))
        keras_lstm.build((None, None, 5))
        keras_lstm.set_weights(fused.get_weights())
        results = []
        for layer in (fused, keras_lstm):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                out = layer(inputs, mask=mask)
                real = out * (tf.cast(mask, tf.float32)[..., None] if return_sequences else 1.0)
                loss = tf.reduce_sum(real * tf.range(1.0, 1.0 + real.shape[-1]))
            results.append([real.numpy()] + [g.numpy() for g in tape.gradient(loss, [inputs] + layer.trainable_variables)])
        for ours, theirs in zip(*results):
            np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert not fused.uses_keras_lstm() and keras_lstm.uses_keras_lstm()
    assert BiLSTM(4).uses_keras_lstm() == bool(tf.config.list_logical_devices("GPU"))


def test_mixed_precision_trains_in_bfloat16_and_keeps_float32_weights(tiny_data):
    from neuroner_tl import api
    from neuroner_tl.config import Hyperparameters
    from neuroner_tl.devices import Devices

    hp = Hyperparameters(token_embedding_dim=16, token_lstm_units=16, max_epochs=3, batch_size=16, learning_rate=0.005)
    result = api.train(tiny_data["train"], None, dev=tiny_data["dev"], hp=hp, verbose=False,
                       devices=Devices("cpu", mixed_precision=True))
    losses = [r["loss"] for r in result.tagger.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert {str(w.dtype) for w in result.tagger.network.weights} == {"float32"}
    assert result.tagger.network.token_bilstm.compute_dtype == "float32", "the tagger itself decodes in float32"
    from neuroner_tl.training import Trainer

    replica = Trainer(result.tagger, devices=Devices("cpu", mixed_precision=True))._training_network()
    assert replica.token_bilstm.compute_dtype == "bfloat16" and replica.crf.compute_dtype == "float32"
    assert replica.emissions.compute_dtype == "float32", "the scores and the CRF stay float32"


@pytest.mark.parametrize("spec, message", [
    ("cpu:0,5", "CPU device"),
    ("7", "device"),
    ("tpu", "expected auto, cpu, gpu"),
    ("gpu:x", "expected gpu:0,1"),
])
def test_bad_devices_are_one_line_errors(spec, message):
    from neuroner_tl.devices import Devices

    with pytest.raises(NeuronerError, match=message):
        Devices(spec)


def test_multi_worker_needs_tf_config(monkeypatch):
    from neuroner_tl.devices import Devices

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(NeuronerError, match="TF_CONFIG"):
        Devices("multi-worker").strategy()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(NeuronerError, match="TF_CONFIG is not valid JSON"):
        Devices("multi-worker").strategy()


def test_the_cli_takes_devices_and_refuses_a_gpu_it_does_not_have(tiny_data, tmp_path):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    code, output = invoke("train", tiny_data["train"], "-o", tmp_path / "m", "--devices", "gpu")
    assert code == 2 and output.strip().splitlines()[-1] == \
        "error: --devices gpu: TensorFlow sees no GPU on this machine (use --devices cpu)", output
    assert not (tmp_path / "m").exists()


MULTI_WORKER = r"""
import json, sys
from neuroner_tl.devices import Devices
devices = Devices(sys.argv[2])
devices.strategy()  # before TensorFlow's runtime starts, as the CLI does
from neuroner_tl import api
from neuroner_tl.config import Hyperparameters
from neuroner_tl.datasets import generate_corpus
train, dev = generate_corpus("A", 96, seed=3), generate_corpus("A", 24, seed=4)
hp = Hyperparameters(token_embedding_dim=16, token_lstm_units=16, char_lstm_units=8, char_embedding_dim=8,
                     max_epochs=3, patience=100, batch_size=16, dropout=0.0, learning_rate=0.005)
output = None if sys.argv[1] == "-" else sys.argv[1]
result = api.train(train, output, dev=dev, hp=hp, verbose=False, devices=devices)
print(json.dumps({"losses": [r["loss"] for r in result.tagger.history], "folder": str(result.folder)}))
"""


@pytest.mark.slow
def test_two_workers_on_the_loopback_train_the_one_process_model_and_only_the_chief_writes(tmp_path):
    """MultiWorkerMirroredStrategy with two processes talking over 127.0.0.1 (TF_CONFIG), one CPU
    each: the loss trajectory of a single process, a model folder written by worker 0 alone."""
    import os

    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    output = tmp_path / "model"
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen([sys.executable, "-c", MULTI_WORKER, str(output), "multi-worker"],
                                        env=dict(os.environ, TF_CONFIG=config), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    alone = subprocess.run([sys.executable, "-c", MULTI_WORKER, "-", "auto"], capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr[-3000:]
    expected = json.loads(alone.stdout.strip().splitlines()[-1])["losses"]
    for result in results:
        np.testing.assert_allclose(result["losses"], expected, rtol=1e-4)
    assert results[0]["folder"] == str(output) and results[1]["folder"] == "None"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "worker 1 leaves nothing behind"
    from neuroner_tl.model_io import load_tagger

    assert load_tagger(output).hp.batch_size == 16
