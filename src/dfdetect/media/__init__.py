"""Open and validate inputs, sample video frames, read images, write videos.

Everything that leaves this package is an RGB uint8 array, upright (rotation metadata and EXIF orientation
applied). Bad input raises MediaError with one line that says what is wrong with which file.

    sampling  FrameSampling and sample_indices       sniff   what a file is, from its bytes
    info      MediaInfo, Frame                       video   probe, iter_frames (PyAV)
    planned   decoding only what sampled frames need (used by iter_frames; same frames as decoding all)
    images    read_image                             inputs  collect_inputs
    writer    open_video_writer, VideoWriter
"""

from .info import Frame, MediaInfo  # noqa: F401
from .sniff import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS, sniff_kind  # noqa: F401
from .sampling import FrameSampling, sample_indices  # noqa: F401
from .images import MAX_IMAGE_PIXELS, read_image  # noqa: F401
from .video import MAX_BAD_PACKETS_IN_A_ROW, iter_frames, probe  # noqa: F401
from .inputs import collect_inputs  # noqa: F401
from .writer import VideoWriter, open_video_writer  # noqa: F401
