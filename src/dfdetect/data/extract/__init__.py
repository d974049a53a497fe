"""Face extraction at dataset scale: manifest of videos in, JPEG face crops and a manifest of crops out.

Presets follow the seed papers:
  train    seed 002 section 2.4.1: up to 10 evenly spaced frames, MTCNN, faces of at least 70 px, 30 px margin;
           a fake reuses the face boxes found in its real original (both crops cover the same region), and
           fake videos are down-sampled to the number of reals (per split) for class balance.
  test     seed 002 section 2.4.2: MTCNN on every frame, IoU tracking (0.75 between consecutive frames),
           people tracked over at least 50 frames, about 50 faces per video in proportion to track length.
  seed000  one frame in 30, MTCNN, the largest face of each frame.
  seed003  Haar cascade, largest face, every 30th frame of reals and 10 random frames of each fake.

Output folder:
  crops/<group>-<hash>/<video>-<hash>_<frame>_<track>.jpg   letterboxed crops (crop_face, the scan path's crop),
                      JPEG q95; the hash (of the exact id) keeps ids that look alike once made file-safe apart
  extract_log.jsonl   one line per finished video: done / no_face / skipped (+ reason), its crop rows and boxes
  manifest.csv        every crop (paths relative to the folder), rebuilt from the log at the end of each run
  extract_config.json the preset and settings; a rerun with other settings is refused
  summary.json        the last run's counts and timings
A video's log line is appended (and flushed to disk) only after all its crops are written, so a rerun skips
exactly the finished videos and redoes one that was cut off (its crops are overwritten: names are stable).
"""

from .presets import ExtractPreset, PRESETS, get_preset  # noqa: F401
from .crops import JPEG_QUALITY, safe_name  # noqa: F401
from .worker import extract_video, init_worker  # noqa: F401
from .records import (  # noqa: F401
    CONFIG_NAME, FINAL_STATUSES, LOG_NAME, MANIFEST_NAME, SUMMARY_NAME, build_manifest, read_log,
)
from .run import ExtractionSummary, balance_fakes, default_workers, load_videos, order_videos, run_extraction  # noqa: F401
