import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_file(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs the real data in ../shared/data ({path} is absent)")
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Small generated customer-service splits (domain A), shared by the tests that train."""
    from neuroner_tl.datasets import write_dataset

    folder = tmp_path_factory.mktemp("tiny_data")
    return write_dataset(folder, "A", sizes=(240, 60, 60), seed=5)


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory):
    """A small model trained for a few epochs and saved; (folder, TrainResult)."""
    from neuroner_tl import api
    from neuroner_tl.config import Hyperparameters

    hp = Hyperparameters(token_embedding_dim=32, token_lstm_units=32, max_epochs=12, patience=12, batch_size=16,
                         learning_rate=0.005)
    folder = tmp_path_factory.mktemp("tiny_model") / "model"
    result = api.train(tiny_data["train"], folder, dev=tiny_data["dev"], test=tiny_data["test"], hp=hp, verbose=False)
    return folder, result
