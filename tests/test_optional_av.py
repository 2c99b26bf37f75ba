"""`import videojepa` and everything short of decoding work without PyAV (a GPU image may lack it)."""

import subprocess
import sys
import textwrap

# `import av` raises ModuleNotFoundError (an ImportError), as on a machine without PyAV.
HIDE_AV = textwrap.dedent(
    """
    import sys
    sys.modules["av"] = None  # `import av` now raises ImportError
    """
)


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_AV + textwrap.dedent(code)], capture_output=True, text=True)


def test_the_package_imports_and_trains_on_tensors_without_av():
    result = run(
        """
        import videojepa, videojepa.data, videojepa.eval, videojepa.train, videojepa.train.trainer
        import videojepa.data.synth, videojepa.data.prepare, videojepa.cli.main
        from videojepa.config import load_config
        cfg = load_config("demo/vjepa", ["model.name=vit_pico", "model.patch_size=8", "data.crop_size=32",
                                         "data.frames_per_clip=8", "predictor.depth=1", "predictor.embed_dim=32",
                                         "predictor.num_heads=2", "train.batch_size=2", "train.precision=fp32"])
        print("loaded", cfg.model.name, "av" in sys.modules and sys.modules["av"] is not None)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "loaded vit_pico False" in result.stdout


def test_decoding_without_av_says_what_is_missing(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    result = run(
        f"""
        from videojepa.data import open_video
        open_video({str(video)!r})
        """
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ImportError: decoding or writing video needs PyAV (`pip install av`)" in last


def test_negative_control_the_hiding_works():
    """The stand-in really hides PyAV: importing it directly fails (else the tests above prove nothing)."""
    result = run("import av")
    assert result.returncode != 0 and "ModuleNotFoundError: import of av halted" in result.stderr
