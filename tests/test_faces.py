"""Face detection, tracking, sampling and cropping on real inputs (skimage's astronaut, DFDC clips)."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.errors import ConfigError
from dfdetect.faces import (
    CropSettings,
    FaceBox,
    Track,
    TrackedFace,
    build_tracks,
    create_detector,
    crop_face,
    crop_region,
    filter_tracks,
    letterbox,
    sample_track_faces,
    stitch_tracks,
)

# The astronaut's face (chin to hairline, ear to ear) placed by hand on skimage.data.astronaut().
ASTRONAUT_FACE = FaceBox(180, 60, 268, 172)

# People on screen in DFDC clips of ../shared/data, checked by eye.
PEOPLE_IN_CLIP = {"bfkzrgovsv": 1, "cedpyannqf": 2}


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn", device="cpu")


@pytest.fixture(scope="module")
def clip_frames(dfdc_videos):
    """The middle frame of each real clip (1080p landscape and 720x1280 portrait)."""
    from dfdetect.media import FrameSampling, iter_frames

    return {p.stem: [f.image for f in iter_frames(p, FrameSampling(count=1))] for p in dfdc_videos}


def side_by_side(image: np.ndarray, shift: int = 0) -> np.ndarray:
    """Two copies of an image in one frame, both moved `shift` pixels to the right."""
    pair = np.concatenate([image, image], axis=1)
    return np.roll(pair, shift, axis=1)


def box_track(frames_and_boxes, track_id=0) -> Track:
    return Track(track_id, [TrackedFace(i, i / 30, FaceBox(*b)) for i, b in frames_and_boxes])


# -- detection ---------------------------------------------------------------------------------------
def test_mtcnn_finds_the_astronaut_face_with_five_landmarks(mtcnn, astronaut):
    faces = mtcnn.detect([astronaut])[0]

    assert len(faces) == 1
    face = faces[0]
    assert face.iou(ASTRONAUT_FACE) > 0.7
    assert face.score > 0.95
    assert face.landmarks.shape == (5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert all(face.x1 <= x <= face.x2 and face.y1 <= y <= face.y2 for x, y in face.landmarks)


def test_mtcnn_maps_boxes_back_from_a_downscaled_frame_in_a_mixed_batch(astronaut):
    import cv2

    detector = create_detector("mtcnn", device="cpu", max_side=256)
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    big = cv2.resize(astronaut, (768, 768), interpolation=cv2.INTER_CUBIC)  # shrunk 3x before detection
    blank = np.zeros((200, 300, 3), np.uint8)
    tiny = astronaut[200:210, 200:215]

    small_faces, big_faces, blank_faces, tiny_faces = detector.detect([small, big, blank, tiny])

    assert blank_faces == [] and tiny_faces == []
    assert len(small_faces) == 1 and len(big_faces) == 1
    assert big_faces[0].iou(small_faces[0].scaled(3.0)) > 0.85
    assert big_faces[0].iou(ASTRONAUT_FACE.scaled(1.5)) > 0.7
    assert np.abs(big_faces[0].landmarks - small_faces[0].landmarks * 3).max() < 10


def test_mtcnn_drops_faces_below_min_face_and_min_confidence(mtcnn, astronaut):
    assert mtcnn.detect_one(astronaut)
    assert create_detector("mtcnn", min_face=150).detect_one(astronaut) == []
    assert create_detector("mtcnn", min_confidence=1.01, max_side=256).detect_one(astronaut) == []


def test_mtcnn_finds_a_face_in_frames_of_every_real_clip(mtcnn, clip_frames):
    for name, frames in clip_frames.items():
        for frame, faces in zip(frames, mtcnn.detect(frames)):
            height, width = frame.shape[:2]
            assert faces, f"no face in a frame of {name}"
            best = faces[0]
            assert best.score >= 0.9 and min(best.width, best.height) >= 50, name
            assert 0 <= best.x1 < best.x2 <= width and 0 <= best.y1 < best.y2 <= height, name


def test_haar_finds_the_astronaut_face(astronaut):
    faces = create_detector("haar").detect([astronaut])[0]

    assert len(faces) == 1
    assert faces[0].iou(ASTRONAUT_FACE) > 0.6
    assert faces[0].landmarks is None


def test_haar_keeps_only_the_largest_face(astronaut):
    import cv2

    half = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    frame = np.zeros((512, 768, 3), np.uint8)
    frame[:, :512], frame[:256, 512:] = astronaut, half

    both = create_detector("haar", largest_only=False).detect_one(frame)
    largest = create_detector("haar").detect_one(frame)

    assert len(both) == 2
    assert len(largest) == 1 and largest[0].iou(ASTRONAUT_FACE) > 0.6


def test_unknown_detector_or_option_is_a_config_error():
    with pytest.raises(ConfigError, match="haar"):
        create_detector("retinaface")
    with pytest.raises(ConfigError, match="max_sid"):
        create_detector("haar", max_sid=640)


# -- tracking ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", sorted(PEOPLE_IN_CLIP))
def test_one_track_per_person_on_a_real_clip(mtcnn, dfdc_videos, clip):
    from dfdetect.media import FrameSampling, iter_frames

    path = next((p for p in dfdc_videos if p.stem == clip), None)
    if path is None:
        pytest.skip(f"clip {clip} is not in the shared data")
    frames = list(iter_frames(path, FrameSampling(count=16)))  # sparser than the usual 32: faces move more
    boxes = mtcnn.detect([f.image for f in frames])
    detections = [(f.index, f.time_s, b) for f, b in zip(frames, boxes)]

    tracks = filter_tracks(build_tracks(detections), n_frames=len(frames))

    assert len(tracks) == PEOPLE_IN_CLIP[clip]
    assert all(len(t) >= 0.8 * len(frames) for t in tracks)


def test_two_faces_side_by_side_make_two_tracks(mtcnn, astronaut):
    import cv2

    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # faces ~45 px: quick to detect
    frames = [side_by_side(small, shift) for shift in (0, 3, 6)]
    detections = [(i, i / 30, faces) for i, faces in enumerate(mtcnn.detect(frames))]

    tracks = build_tracks(detections, iou_threshold=0.75)

    assert [len(t) for t in tracks] == [3, 3]
    assert sorted(round(t.faces[0].box.center[0] / 256) for t in tracks) == [0, 1]


def test_tracks_bridge_short_gaps_and_split_at_long_ones_until_stitched():
    face = [10, 10, 60, 60]
    detections = [(i, i / 30, [FaceBox(*face)] if i not in (2, 6, 7, 8) else []) for i in range(12)]

    assert [t.frame_indices for t in build_tracks(detections, max_gap=2, stitch=False)] == [[0, 1, 3, 4, 5],
                                                                                          [9, 10, 11]]
    assert [t.frame_indices for t in build_tracks(detections, max_gap=2)] == [[0, 1, 3, 4, 5, 9, 10, 11]]


def test_stitching_joins_only_a_later_segment_where_a_track_left_off():
    left, right, far = [0, 0, 100, 100], [110, 0, 210, 100], [600, 0, 700, 100]
    person = box_track([(0, left), (1, left)], 0)
    other = box_track([(0, right), (1, right), (2, right)], 1)   # overlaps the others in time: never joined
    elsewhere = box_track([(5, far), (6, far)], 2)               # later, but not where anyone left off
    back = box_track([(7, [5, 0, 105, 100]), (8, left)], 3)      # later, where `person` left off

    tracks = stitch_tracks([person, other, elsewhere, back])

    assert [t.frame_indices for t in tracks] == [[0, 1, 7, 8], [0, 1, 2], [5, 6]]
    assert [t.id for t in tracks] == [0, 1, 2]


@pytest.mark.parametrize("clip", ["baxpshhrhc", "bfkzrgovsv", "ccpzqqemva", "euqujvlnnb"])
def test_haar_misses_do_not_split_a_person(dfdc_videos, clip):
    """Haar misses the face in about a third of the frames; one person must still be one track."""
    from dfdetect.media import iter_frames

    path = next((p for p in dfdc_videos if p.stem == clip), None)
    if path is None:
        pytest.skip(f"clip {clip} is not in the shared data")
    frames = list(iter_frames(path, "32"))
    boxes = create_detector("haar").detect([f.image for f in frames])
    detections = [(f.index, f.time_s, b) for f, b in zip(frames, boxes)]

    assert len(filter_tracks(build_tracks(detections), n_frames=len(frames))) == 1


def test_tracks_link_by_overlap_or_by_a_small_shift_of_a_similar_box():
    overlapping = [(0, 0.0, [FaceBox(0, 0, 100, 100)]), (9, 0.3, [FaceBox(40, 0, 140, 100)])]  # IoU 0.43
    moved = [(0, 0.0, [FaceBox(0, 0, 100, 100)]), (9, 0.3, [FaceBox(90, 0, 190, 100)])]  # IoU 0.05
    zoomed = [(0, 0.0, [FaceBox(0, 0, 100, 100)]), (9, 0.3, [FaceBox(50, 0, 200, 150)])]  # 2.25x the area

    assert len(build_tracks(overlapping)) == 1
    assert len(build_tracks(overlapping, iou_threshold=0.75, max_shift=0)) == 2
    assert len(build_tracks(moved)) == 1
    assert len(build_tracks(moved, max_shift=0)) == 2
    assert len(build_tracks(zoomed)) == 2


def test_iou_from_torchvision_matches_the_definition():
    from dfdetect.faces.detect import iou_matrix

    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 100, (12, 2))
    boxes = [FaceBox(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, rng.uniform(1, 60, (12, 2)))]
    for a in boxes:
        for b in boxes:
            w = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
            h = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
            assert a.iou(b) == pytest.approx(w * h / (a.area + b.area - w * h), abs=1e-12)
    assert np.allclose(iou_matrix(boxes[:3], boxes), [[a.iou(b) for b in boxes] for a in boxes[:3]])
    assert FaceBox(0, 0, 0, 0).iou(FaceBox(0, 0, 0, 0)) == 0.0 and iou_matrix([], boxes).shape == (0, 12)


def test_a_grown_box_that_still_overlaps_links_without_an_infeasible_assignment():
    """IoU 0.44 but 2.25x the area: allowed by overlap though the shift rule calls it infinitely far."""
    grown = [(0, 0.0, [FaceBox(0, 0, 100, 100)]), (9, 0.3, [FaceBox(0, 0, 150, 150)])]
    two_people = [(0, 0.0, [FaceBox(0, 0, 100, 100), FaceBox(400, 0, 500, 100)]),
                  (9, 0.3, [FaceBox(0, 0, 150, 150), FaceBox(405, 0, 505, 100)])]

    assert [t.frame_indices for t in build_tracks(grown)] == [[0, 9]]
    assert [t.frame_indices for t in build_tracks(two_people)] == [[0, 9], [0, 9]]
    segments = [box_track([(0, [0, 0, 100, 100])], 0), box_track([(9, [0, 0, 150, 150])], 1)]
    assert [t.frame_indices for t in stitch_tracks(segments)] == [[0, 9]]


def test_haar_on_a_clip_whose_face_grows_between_samples(dfdc_videos):
    from dfdetect.media import iter_frames

    path = next((p for p in dfdc_videos if p.stem == "cbqfgqronr"), None)
    if path is None:
        pytest.skip("clip cbqfgqronr is not in the shared data")
    frames = list(iter_frames(path, "8"))
    boxes = create_detector("haar").detect([f.image for f in frames])

    tracks = build_tracks([(f.index, f.time_s, b) for f, b in zip(frames, boxes)])

    assert sum(len(t) for t in tracks) == sum(len(b) for b in boxes)


def test_a_face_next_to_another_stays_on_its_own_track():
    left, right = [0, 0, 100, 100], [110, 0, 210, 100]
    detections = [(0, 0.0, [FaceBox(*left), FaceBox(*right)]), (9, 0.3, [FaceBox(*right)]),
                  (18, 0.6, [FaceBox(*right), FaceBox(*left)])]

    tracks = build_tracks(detections)

    assert [t.frame_indices for t in tracks] == [[0, 18], [0, 9, 18]]
    assert all(f.box.x1 == 0 for f in tracks[0].faces)


def test_filter_tracks_drops_short_and_tiny_tracks_but_never_all():
    long = box_track([(i, [0, 0, 100, 100]) for i in range(10)], 0)
    blip = box_track([(3, [500, 0, 600, 100])], 1)
    tiny = box_track([(i, [800, 0, 810, 10]) for i in range(10)], 2)

    assert filter_tracks([long, blip, tiny], n_frames=10, min_face=20) == [long]
    assert filter_tracks([blip], n_frames=10) == [blip]


def test_box_at_interpolates_between_sightings_and_holds_at_the_ends():
    track = box_track([(10, [0, 0, 100, 100]), (20, [50, 20, 150, 120])])

    assert track.box_at(15).to_list() == [25, 10, 125, 110]
    assert track.box_at(12).to_list() == pytest.approx([10, 4, 110, 104])
    assert track.box_at(20).to_list() == [50, 20, 150, 120]
    assert track.box_at(9) is None and track.box_at(21) is None
    assert track.box_at(23, hold=5).to_list() == [50, 20, 150, 120]


def test_sample_track_faces_shares_in_proportion_to_track_length():
    person_a = box_track([(i, [0, 0, 100, 100]) for i in range(100)], 0)
    person_b = box_track([(i, [300, 0, 400, 100]) for i in range(200)], 1)
    passer_by = box_track([(i, [600, 0, 700, 100]) for i in range(30)], 2)

    sample = sample_track_faces([person_a, person_b, passer_by], total=50, min_length=50)

    counts = {t.id: sum(1 for track, _ in sample if track is t) for t in (person_a, person_b, passer_by)}
    assert counts == {0: 17, 1: 33, 2: 0}
    frames_b = [face.frame_index for track, face in sample if track is person_b]
    assert frames_b[0] == 0 and frames_b[-1] == 199 and len(set(frames_b)) == 33


def test_sample_track_faces_with_sparse_sightings_and_short_tracks():
    sparse = box_track([(i * 9, [0, 0, 100, 100]) for i in range(32)])
    short = box_track([(i, [0, 0, 100, 100]) for i in range(5)])

    assert len(sample_track_faces([sparse], total=50)) == 32
    assert len(sample_track_faces([short], total=50, min_length=50)) == 5


# -- cropping ----------------------------------------------------------------------------------------
def test_crop_face_is_a_square_uint8_crop_centred_on_the_face(astronaut):
    crop = crop_face(astronaut, ASTRONAUT_FACE, CropSettings(size=224, margin=0.3))

    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    assert np.array_equal(crop, crop_face(astronaut, ASTRONAUT_FACE, CropSettings(size=224, margin=0.3)))
    # Box 88 x 112 plus 30 % a side -> region 142 x 180, resized to 177 x 224 between black columns 23 / 24 wide.
    assert not crop[:, :23].any() and not crop[:, -24:].any()
    assert crop[:, 23:200].any(axis=(0, 2)).all()


def test_margins_add_fraction_and_pixels_and_clip_at_the_border():
    box = FaceBox(100, 100, 200, 150)

    assert crop_region(box, CropSettings(margin=0.5), 1000, 1000) == (50, 75, 250, 175)
    assert crop_region(box, CropSettings(margin=0.0, margin_px=30), 1000, 1000) == (70, 70, 230, 180)
    assert crop_region(FaceBox(-20, 5, 60, 90), CropSettings(margin=0.3), 300, 100) == (0, 0, 84, 100)


def test_crop_at_the_frame_border_is_zero_padded_not_stretched(astronaut):
    corner = FaceBox(0, 0, 120, 60)

    crop = crop_face(astronaut, corner, CropSettings(size=128, margin=0.25))

    # Region (0, 0) - (150, 75) is twice as wide as tall: 128 x 64 of image between 32 black rows.
    assert not crop[:32].any() and not crop[-32:].any()
    assert crop[32:96].any(axis=2).mean() > 0.9


def test_letterbox_shrinks_and_enlarges_keeping_aspect_ratio():
    wide = np.full((50, 100, 3), 200, np.uint8)
    tall = np.full((400, 100, 3), 200, np.uint8)

    out_wide, out_tall = letterbox(wide, 64), letterbox(tall, 64)

    assert out_wide.shape == out_tall.shape == (64, 64, 3)
    assert np.array_equal(np.nonzero(out_wide.any(axis=(1, 2)))[0], np.arange(16, 48))
    assert np.array_equal(np.nonzero(out_tall.any(axis=(0, 2)))[0], np.arange(24, 40))
    assert (out_wide[16:48] == 200).all()
    assert letterbox(np.full((10, 20), 9, np.uint8), 8).shape == (8, 8)


def test_crop_settings_reject_negative_margins():
    with pytest.raises(ConfigError):
        CropSettings(margin=-0.1)
    assert CropSettings(min_face=70).keeps(FaceBox(0, 0, 80, 90))
    assert not CropSettings(min_face=70).keeps(FaceBox(0, 0, 60, 90))


def test_a_crop_cut_wide_is_cut_again_as_the_card_says(mtcnn, astronaut):
    from dfdetect.faces.crop import FaceCrop, Recropper

    wide = crop_face(astronaut, ASTRONAUT_FACE, CropSettings(size=300, margin=0.6))  # another pipeline's framing
    recrop = Recropper(FaceCrop(detector="mtcnn", margin=0.0), 224)
    again = recrop(wide)
    box = mtcnn.detect_one(astronaut)[0]
    tight = crop_face(astronaut, box, CropSettings(size=224, margin=0.0))  # what the scan cuts from the frame
    assert again.shape == (224, 224, 3) and recrop.kept == 0

    def differs(image):
        return np.abs(image.astype(float) - tight.astype(float)).mean()
    assert differs(again) < differs(letterbox(wide, 224)) / 2  # close to the scan's cut, unlike the wide one

    blank = np.full((224, 224, 3), 128, np.uint8)  # no face to find: scored as given, and counted
    assert np.array_equal(recrop(blank), blank) and recrop.kept == 1
