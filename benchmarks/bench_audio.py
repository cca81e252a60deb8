"""Speed of the speech synthesiser, the log-Mel segment extraction and (optionally) corpus generation.

    python benchmarks/bench_audio.py            # synthesis and features (a few seconds)
    python benchmarks/bench_audio.py --corpora  # also make_corpus(full) for each corpus, in a scratch cache

Feature extraction runs on the real EMO-DB and RAVDESS when MTL_DATA_ROOT
points at them, else on a tiny synthetic EMO-DB. One thread per process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mtl.config import Config  # noqa: E402
from mtl.corpora import load_corpus  # noqa: E402
from mtl.synthetic.speech import CORPUS_STYLES, make_speaker, synthesize  # noqa: E402


def bench_synthesis(repeats: int = 20) -> None:
    voice = make_speaker("p0", "m", np.random.default_rng(0))
    for corpus, style in CORPUS_STYLES.items():
        synthesize("anger", voice, "a01", corpus, np.random.default_rng(0), duration=3.0)
        start = time.perf_counter()
        for k in range(repeats):
            synthesize(["anger", "sadness", "neutral", "fear"][k % 4], voice, "a01", corpus,
                       np.random.default_rng(k), duration=3.0)
        ms = (time.perf_counter() - start) / repeats * 1000
        print(f"synthesize 3 s  {corpus:9s} @ {style.sample_rate:5d} Hz: {ms:6.1f} ms per utterance")


def bench_features() -> None:
    from mtl.features.audio import utterance_segments

    config = Config()
    tables = []
    for name in ("emodb", "ravdess"):
        try:
            tables.append(load_corpus(name))
        except FileNotFoundError:
            pass
    if not tables:
        from mtl.synthetic import make_corpus

        tables.append(load_corpus("emodb", root=make_corpus("emodb", size="tiny")))
    for table in tables:
        utterance_segments(table["path"].iloc[0], config)
        start = time.perf_counter()
        n_segments = sum(len(utterance_segments(path, config)) for path in table["path"])
        seconds = time.perf_counter() - start
        print(f"utterance_segments {table['corpus'].iloc[0]:8s}: {len(table)} files, {n_segments} segments, "
              f"{seconds:5.1f} s, {seconds / len(table) * 1000:5.2f} ms per file")


def bench_corpora() -> None:
    from mtl.synthetic import make_corpus

    scratch = tempfile.mkdtemp(prefix="mtl-bench-")
    try:
        for name in ("emodb", "savee", "enterface"):
            start = time.perf_counter()
            root = make_corpus(name, root=os.path.join(scratch, name), size="full")
            seconds = time.perf_counter() - start
            size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
            print(f"make_corpus({name!r}, size='full'): {seconds:6.1f} s, {size_mb:6.1f} MB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", action="store_true", help="also time make_corpus(full) for each corpus")
    args = parser.parse_args()
    bench_synthesis()
    bench_features()
    if args.corpora:
        bench_corpora()
