"""PyAV reader: frame-exact reads by index, keyframe seeking, images, bad files."""

import numpy as np
import pytest

from videojepa.data.readers import BadFileError, open_video, read_image, register_backend
from videojepa.data.synth import decode_index, index_pattern, write_index_video, write_mp4


@pytest.mark.parametrize("gop,bframes", [(1, 0), (8, 2), (30, 3), (None, None)])
def test_reads_exact_frames_whatever_the_gop(tmp_path, gop, bframes):
    path = str(tmp_path / "v.mp4")
    write_index_video(path, 96, 32, 48, gop=gop, bframes=bframes)
    with open_video(path) as reader:
        assert reader.num_frames == 96 and reader.fps == 30
        indices = [95, 3, 3, 40, 41, 0, 64, 7]  # unsorted, repeated
        frames = reader.read(indices)
        assert frames.shape == (8, 32, 48, 3) and str(frames.dtype) == "torch.uint8"
        assert decode_index(frames.numpy()).tolist() == indices
        assert decode_index(reader.read(range(96)).numpy()).tolist() == list(range(96))


def test_seeks_to_nearest_keyframe_instead_of_decoding_from_start(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_index_video(path, 200, 32, 32, gop=10, bframes=2)
    with open_video(path) as reader:
        frames = reader.read([180, 184, 188])
        assert decode_index(frames.numpy()).tolist() == [180, 184, 188]
        assert reader.frames_decoded <= 12  # from keyframe 180 to 188, not 189 frames from the start
        before = reader.frames_decoded
        reader.read([150])  # backwards: seeks again
        assert reader.frames_decoded - before <= 4


def test_sequential_chunks_decode_each_frame_once(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_index_video(path, 64, 32, 32, gop=16, bframes=2)
    with open_video(path) as reader:
        for first in range(0, 64, 16):
            chunk = range(first, first + 16)
            assert decode_index(reader.read(chunk).numpy()).tolist() == list(chunk)
        assert reader.frames_decoded == 64


def test_index_out_of_range_is_a_programming_error(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_index_video(path, 10, 32, 32)
    with open_video(path) as reader, pytest.raises(ValueError, match="outside 0..9"):
        reader.read([10])


def test_images_read_through_ffmpeg(tmp_path):
    import av

    frame = index_pattern(6, 32, 48)[5]
    path = str(tmp_path / "img.png")
    with av.open(path, "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 48, 32, "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    image = read_image(path)
    assert image.shape == (32, 48, 3)
    assert np.array_equal(image.numpy(), frame)


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not a video\n" * 50), "not a readable media file"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "not a readable media file"),
    ],
)
def test_bad_files_raise_with_a_reason(tmp_path, make, reason):
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(BadFileError, match=reason) as info:
        open_video(str(path))
    assert info.value.path == str(path)


def test_truncated_and_unsupported_codec(tmp_path):
    good = tmp_path / "good.mp4"
    write_mp4(str(good), index_pattern(40, 32, 32), 30)
    data = good.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end: lost
    with pytest.raises(BadFileError, match="not a readable media file"):
        open_video(str(tmp_path / "cut.mp4"))
    tag = data.find(b"avc1", data.find(b"stsd"))
    (tmp_path / "codec.mp4").write_bytes(data[:tag] + b"zzzz" + data[tag + 4 :])
    with pytest.raises(BadFileError, match="unsupported codec"):
        open_video(str(tmp_path / "codec.mp4"))


def test_truncated_with_index_in_front(tmp_path):
    import av

    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=30)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for frame in np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype=np.uint8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadFileError, match="truncated"):
        open_video(str(path))


def test_register_backend(tmp_path):
    class Fake:
        def __init__(self, path, **kwargs):
            self.path, self.num_frames, self.fps = path, 3, 1.0

    register_backend("fake", Fake)
    assert open_video("x", backend="fake").num_frames == 3
    with pytest.raises(ValueError, match="unknown video backend"):
        open_video("x", backend="nope")
