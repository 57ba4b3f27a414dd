import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_run_task_writes_the_papers_table(tmp_path):
    config = {
        "title": "tiny task (iii)", "task": "iii", "seed": 3, "target_types": ["Address"], "forget": False,
        "exclude_from_source": ["Address"],
        "data": {"kind": "synthetic", "source": {"domain": "A", "train": 150, "dev": 40},
                 "target": {"domain": "B", "train": 60}, "test": {"domain": "B", "size": 60}},
        "hyperparameters": {"max_epochs": 2, "token_embedding_dim": 16, "token_lstm_units": 16, "learning_rate": 0.005},
        "update": {"max_epochs": 2},
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    completed = subprocess.run([sys.executable, str(ROOT / "experiments" / "run_task.py"), "--config", str(path),
                                "--output", str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "tiny task (iii)" in completed.stdout and "Address" in completed.stdout
    out = tmp_path / "out"
    for name in ("results.md", "results.csv", "results.json", "results.png", "config.json", "M_S", "M_T"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader((out / "results.csv").open()))
    address = next(r for r in rows if r["NE type"] == "Address")
    assert address["# training examples in D_S"] == "0" and int(address["# training examples in D_T"]) > 0
    assert rows[-1]["NE type"] == "All"
    others = [r for r in rows if r["NE type"] not in ("Address", "All")]
    assert all(r["# training examples in D_T"] == "0" for r in others), "D_T annotates only the target type"
    record = json.loads((out / "results.json").read_text())
    assert record["seed"] == 3 and record["config"]["target_types"] == ["Address"]
