"""Read a dataset in its official layout into one manifest (see dfdetect.data.manifest for the columns).

Formats (registry INDEXERS; `index_dataset(root, "auto")` recognises the layout):
  dfdc       part folders with metadata.json ({"x.mp4": {"label": "FAKE", "original": "y.mp4"}}); the videos
             beside it or in its sub-folders. A folder without metadata.json may use labels.csv instead.
  ffpp       FaceForensics++: original_sequences/{youtube,actors}/<c23|c40|raw>/videos and
             manipulated_sequences/<method>/<quality>/videos, official splits train/val/test.json when present.
  celebdf    Celeb-DF v2: Celeb-real, Celeb-synthesis, YouTube-real, List_of_testing_videos.txt.
  folders    image folders real/ + fake/ (or 0_real/ + 1_fake/), at any depth (ForenSynths-style categories).
  crops-csv  face crops described by a CSV with a label column (e.g. the DFDC "deepfake_faces" set).

Groups (the unit that never straddles two splits):
  DFDC: a real by its own name, a fake by its original (fakes without an original: their own name).
  FF++ / Celeb-DF: identities that appear together in any fake are joined (union-find), so a pair
  "000_003" and the reals 000 and 003 form one group; Celeb-DF can instead group by the target identity.
  Image folders: each image, unless `group_regex` pulls a source id out of the relative path.

A new format is one module in this package with one `register_format` call (see core.py).

Problems that leave the rest usable (a part without metadata.json, a label file naming absent videos, ...)
are collected in `Index.problems` as one line each; a layout that is not recognised raises DatasetError.
"""

from .core import (  # noqa: F401
    INDEXERS, DatasetFormat, Index, detect_format, format_names, index_dataset, register_format,
)
from .files import EXAMPLES, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS  # noqa: F401
from .dfdc import index_dfdc  # noqa: F401
from .ffpp import FFPP_METHODS, FFPP_QUALITIES, index_ffpp  # noqa: F401
from .celebdf import CELEBDF_FOLDERS, index_celebdf  # noqa: F401
from .folders import FAKE_FOLDERS, REAL_FOLDERS, index_folders  # noqa: F401
from .crops_csv import IMAGE_FOLDERS, LABEL_COLUMNS, PATH_COLUMNS, index_crops_csv  # noqa: F401


def _import_formats() -> None:
    """Import every module of this package: each format registers itself where it is defined."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_formats()
