"""Exceptions with messages a person can act on. The CLI prints `str(exc)` as one line."""


class DfdetectError(Exception):
    """Base class: anything the user can fix (bad input, missing file, wrong option)."""


class MediaError(DfdetectError):
    """A file that is not a readable image or video (corrupt, truncated, empty, wrong type, too large)."""


class CheckpointError(DfdetectError):
    """A checkpoint whose weights and card disagree, or that cannot be read safely."""


class WeightsUnavailableError(DfdetectError):
    """A pretrained weight source that cannot be reached or does not exist."""


class ConfigError(DfdetectError):
    """A recipe or option that does not validate."""


class DatasetError(DfdetectError):
    """A dataset folder whose layout or label files are wrong."""
