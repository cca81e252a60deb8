"""Face rendering speed, face-detector calibration and feature-extraction throughput.

    python benchmarks/bench_features.py              # everything (about 1.5 minutes on 2 cores)
    python benchmarks/bench_features.py --skip-calibration

1. Rendering: milliseconds per synthetic 128 x 128 face frame.
2. Detector calibration: the share of synthetic face frames (all seven
   expressions, many identities) and of negative controls (plain skin-coloured
   ellipses, heads without facial features, noise) whose best detection
   reaches each score threshold -- the data behind
   :data:`mtl.features.faces.MIN_SCORE`.
3. Throughput of :func:`mtl.features.build_features` with one process and with
   every core, in a scratch cache (so both really extract): audio segments per
   second on the real EMO-DB when MTL_DATA_ROOT points at it (else a tiny
   synthetic EMO-DB), video frames per second on the tiny synthetic
   eNTERFACE (every frame, as in the paper); then the cached reload.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mtl.config import Config  # noqa: E402
from mtl.corpora import load_corpus  # noqa: E402
from mtl.features import build_features  # noqa: E402
from mtl.features import faces as face_features  # noqa: E402
from mtl.synthetic import faces  # noqa: E402

THRESHOLDS = (3.0, 3.5, 4.0, 4.5, 5.0, 6.0)


def bench_rendering(repeats: int = 300) -> None:
    rng = np.random.default_rng(0)
    identity = faces.random_identity(rng)
    faces.render_face(identity, {}, rng)
    start = time.perf_counter()
    for k in range(repeats):
        faces.render_face(identity, {12: k / repeats, 6: 0.5}, rng)
    print(f"render_face 128x128: {(time.perf_counter() - start) / repeats * 1000:.2f} ms per frame")


def best_score(frame: np.ndarray) -> float:
    found = face_features.detect_faces(frame, min_score=-np.inf)
    return found[0][1] if found else -np.inf


def bench_calibration(n_clips: int, n_controls: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    face_scores = np.array([best_score(frame) for k in range(n_clips)
                            for frame in faces.render_clip(faces.random_identity(rng),
                                                           faces.EMOTIONS[k % len(faces.EMOTIONS)], 8, rng)[0]])
    detect_ms = (time.perf_counter() - start) / len(face_scores) * 1000
    controls = {
        "plain ellipse": np.array([best_score(faces.render_blank_ellipse(rng)) for _ in range(n_controls)]),
        "featureless head": np.array([best_score(faces.render_blank_face(faces.random_identity(rng), rng))
                                      for _ in range(n_controls)]),
        "noise": np.array([best_score(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
                           for _ in range(n_controls // 4)]),
    }
    print(f"\ndetector calibration ({len(face_scores)} face frames of {n_clips} clips, about {detect_ms:.1f} ms "
          f"per frame incl. rendering; chosen MIN_SCORE = {face_features.MIN_SCORE})")
    print(f"  {'any detection':>16s}: faces {np.isfinite(face_scores).mean():6.1%}  " + "  ".join(
        f"{name} {np.isfinite(s).mean():6.1%}" for name, s in controls.items()))
    print(f"  face scores: median {np.median(face_scores):.2f}, 5th percentile {np.percentile(face_scores, 5):.2f}; "
          + ", ".join(f"{name} max {s.max():.2f}" for name, s in controls.items()))
    print(f"  {'threshold':>16s}  {'faces':>7s}  " + "  ".join(f"{name:>16s}" for name in controls))
    for threshold in THRESHOLDS:
        print(f"  {threshold:16.1f}  {(face_scores >= threshold).mean():7.1%}  "
              + "  ".join(f"{(s >= threshold).mean():16.2%}" for s in controls.values()))


def throughput(table, config: Config, n_jobs: int, unit: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        features = build_features(table, config, cache_dir=scratch, n_jobs=n_jobs, progress=False)
        seconds = time.perf_counter() - start
        n = len(features)
        start = time.perf_counter()
        build_features(table, config, cache_dir=scratch, n_jobs=n_jobs, progress=False)
        reload = time.perf_counter() - start
    print(f"  {table['corpus'].iloc[0]:10s} {unit:9s} n_jobs={n_jobs:<3d} {len(table):5d} files {n:6d} samples "
          f"{seconds:7.1f} s {n / seconds:8.1f} {unit}/s   cached reload {reload * 1000:6.1f} ms")
    return seconds, n


def bench_throughput() -> None:
    from mtl.synthetic import make_corpus

    config = Config()
    cores = os.cpu_count() or 1
    data_root = os.environ.get("MTL_DATA_ROOT")
    if data_root and (Path(data_root) / "emodb").is_dir():
        audio = load_corpus("emodb", root=Path(data_root) / "emodb")
    else:
        audio = load_corpus("emodb", root=make_corpus("emodb", size="tiny"))
    video = load_corpus("enterface", root=make_corpus("enterface", size="tiny"), modality="video")
    print(f"\nbuild_features throughput (paper settings: frame_step={config.frame_step}; {cores} cores)")
    for table, unit in ((audio, "segments"), (video, "frames")):
        one, n = throughput(table, config, 1, unit)
        many, _ = throughput(table, config, cores, unit)
        print(f"  speed-up with {cores} processes: {one / many:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-calibration", action="store_true")
    parser.add_argument("--clips", type=int, default=280, help="synthetic clips (8 frames each) for calibration")
    parser.add_argument("--controls", type=int, default=800, help="negative controls of each kind")
    args = parser.parse_args()
    bench_rendering()
    if not args.skip_calibration:
        bench_calibration(args.clips, args.controls)
    bench_throughput()


if __name__ == "__main__":
    main()
