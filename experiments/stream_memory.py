#!/usr/bin/env python3
"""Memory of ``neuroner-tl predict`` on a large input: does it stay flat while the input streams by?

    python3 experiments/stream_memory.py MODEL --size-mb 1024 --time-limit 600

Writes an input of ``--size-mb`` MB by repeating CoNLL-2003 test (as CoNLL, or ``--text`` as raw text,
a sentence a line), runs ``neuroner-tl predict MODEL INPUT -o OUTPUT`` and samples the process's
resident memory (VmRSS) and how far it has read the input (its file offset) twice a second. Prints
the peak RSS after every tenth of what was read and overall, and tokens per second. With ``--time-limit``
the run is stopped there and the table covers the part read so far.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "conll2003" / "test.txt"


def sentences_of(path: Path):
    sentence = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if sentence:
                yield sentence
                sentence = []
        else:
            sentence.append(fields[0])
    if sentence:
        yield sentence


def write_input(path: Path, size_bytes: int, as_text: bool) -> int:
    """Repeat the test set until ``size_bytes``; returns the number of tokens written."""
    block = list(sentences_of(TEST))
    if as_text:
        chunk = "".join(" ".join(s) + "\n" for s in block)
    else:
        chunk = "".join("".join(t + "\n" for t in s) + "\n" for s in block)
    tokens_per_chunk = sum(len(s) for s in block)
    data = chunk.encode("utf-8")
    written = tokens = 0
    with path.open("wb") as stream:
        while written < size_bytes:
            stream.write(data)
            written += len(data)
            tokens += tokens_per_chunk
    return tokens


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def input_offset(pid: int, path: Path) -> int:
    """How far the process has read ``path`` (the offset of its open descriptor), -1 when not open."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    return int(info.readline().split()[1])
        except OSError:
            continue
    return -1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--text", action="store_true", help="raw text input instead of CoNLL")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds")
    parser.add_argument("--workdir", type=Path, help="where the input and output go (default: a temporary folder)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="stream_memory_"))
    workdir.mkdir(parents=True, exist_ok=True)
    source = (workdir / ("input.txt" if args.text else "input.conll")).resolve()
    size = int(args.size_mb * 1024 * 1024)
    tokens = write_input(source, size, args.text)
    size = source.stat().st_size
    output = workdir / "output.conll"
    output.unlink(missing_ok=True)
    command = [sys.executable, "-m", "neuroner_tl.cli", "predict", str(args.model), str(source), "-o", str(output),
               "--input-format", "text" if args.text else "conll"]
    print(f"input {source}: {size / 2**20:.0f} MiB, {tokens:,} tokens; {' '.join(command)}", flush=True)
    started = time.time()
    # a shell's background job ignores SIGINT and children inherit that: give predict Ctrl-C back
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    samples = []  # (seconds, fraction read, rss)
    stopped = False
    while process.poll() is None:
        try:
            offset, rss = input_offset(process.pid, source), rss_mib(process.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        samples.append((time.time() - started, max(offset, 0) / size, rss))
        if args.time_limit and time.time() - started > args.time_limit:
            process.send_signal(signal.SIGINT)  # as Ctrl-C: predict removes its temporary output
            stopped = True
            break
        time.sleep(0.5)
    process.wait()
    seconds = time.time() - started
    if not stopped and process.returncode != 0:
        raise SystemExit(f"predict failed: {process.stderr.read()}")
    read = 1.0 if not stopped else max(s[1] for s in samples)
    print(f"{'stopped at the time limit' if stopped else 'finished'} after {seconds:.0f} s; read {100 * read:.1f}% "
          f"of the input ({read * size / 2**20:.0f} MiB, about {read * tokens / seconds:,.0f} tokens/s "
          f"including start-up)")
    print("| input read (MiB) | seconds | peak RSS so far (MiB) | RSS now (MiB) |\n|---:|---:|---:|---:|")
    step = read / 10  # ten rows over what was read
    peak, mark = 0.0, step
    for seconds_in, fraction, rss in samples:
        peak = max(peak, rss)
        while fraction >= mark - 1e-12 and mark <= read + 1e-12:
            print(f"| {mark * size / 2**20:,.0f} | {seconds_in:.0f} | {peak:,.0f} | {rss:,.0f} |")
            mark += step
    print(f"overall peak RSS: {max(s[2] for s in samples):,.0f} MiB")
    if not args.workdir:
        source.unlink()
        output.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
