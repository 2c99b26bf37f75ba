"""How much of VideoMAE's normalised-pixel target on the synthetic videos is noise (JSON on stdout).

    python experiments/pixel_targets.py --data runs/demo/data --videos 200

The target of a masked tubelet (2 frames x 8 x 8 pixels, per channel) is its pixels minus their mean, divided
by their std (`videojepa.methods.losses.pixel_targets`, VideoMAE's norm_pix_loss). For each of the first
`--videos` scenes of a synthetic dataset, three versions of the same frames are compared: CLEAN (rendered with
`noise=0`: what a model could predict from context), RENDERED (with the per-pixel noise, before encoding) and
DECODED (the mp4 the model trains on). Reported per tubelet group (touching the object or background only):
the tubelet's pixel std, and the share of the normalised target's variance that is NOT in the clean
target (pixel noise + codec error): a loss no model can go below, whatever it learns. Also the share of the
decoded pixels' variance (per video and channel) that lies in the tubelets' means, which the normalised target
removes: what a model regressing un-normalised pixels (`method.pixel_norm=none`) mostly learns first.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np


def tubelets(frames: np.ndarray, t: int = 2, p: int = 8) -> np.ndarray:
    """F x H x W x 3 (0..1) -> (tubelets, channels, t*p*p)."""
    F, H, W, C = frames.shape
    x = frames.reshape(F // t, t, H // p, p, W // p, p, C).transpose(0, 2, 4, 6, 1, 3, 5)
    return x.reshape(-1, C, t * p * p)


def normalise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(-1, keepdims=True)) / (x.std(-1, ddof=1, keepdims=True) + 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a `videojepa data synth` folder (with scenes.csv, synth.json)")
    parser.add_argument("--videos", type=int, default=200)
    args = parser.parse_args()

    from videojepa.data.synth import SynthSpec, render_scene

    data = Path(args.data)
    info = json.loads((data / "synth.json").read_text())
    spec = SynthSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in info["spec"].items()})
    clean_spec = dataclasses.replace(spec, noise=0.0)
    scenes = list(csv.DictReader((data / "scenes.csv").open()))[: args.videos]
    groups = {"object": [], "background": []}
    mean_shares = []
    for i, scene in enumerate(scenes):
        clean = render_scene(clean_spec, info["seed"], i, scene["motion"], scene["appearance"]) / 255.0
        rendered = render_scene(spec, info["seed"], i, scene["motion"], scene["appearance"]) / 255.0
        decoded = decode(data / scene["path"]) / 255.0
        c, r, d = tubelets(clean), tubelets(rendered), tubelets(decoded)
        between = d.mean(-1).var(0)  # per channel: variance of the tubelet means
        within = d.var(-1).mean(0)
        mean_shares.append(float((between / (between + within)).mean()))
        # a tubelet touches the object where the clean frames differ from the clean frames' background estimate:
        # the per-tubelet clean std of a background tubelet is that of a smooth gradient, small
        touches = object_mask(scene, info, clean_spec, i)
        tc, td, tr = normalise(c), normalise(d), normalise(r)
        for name, sel in (("object", touches), ("background", ~touches)):
            groups[name].append(
                {
                    "clean_std": c[sel].std(-1, ddof=1).mean(-1),
                    "decoded_std": d[sel].std(-1, ddof=1).mean(-1),
                    "noise_share_decoded": ((td[sel] - tc[sel]) ** 2).mean((-1, -2)) / (td[sel] ** 2).mean((-1, -2)),
                    "noise_share_rendered": ((tr[sel] - tc[sel]) ** 2).mean((-1, -2)) / (tr[sel] ** 2).mean((-1, -2)),
                }
            )
    out = {"data": str(data), "videos": len(scenes), "tubelet": "2x8x8 per channel"}
    out["pixel_variance_share_of_tubelet_means"] = float(np.mean(mean_shares))
    total = sum(len(np.concatenate([g["clean_std"] for g in groups[n]])) for n in groups)
    for name, rows in groups.items():
        cat = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
        out[name] = {
            "share_of_tubelets": len(cat["clean_std"]) / total,
            "pixel_std_median": float(np.median(cat["decoded_std"])),
            "clean_pixel_std_median": float(np.median(cat["clean_std"])),
            "noise_share_of_target_decoded_mean": float(cat["noise_share_decoded"].mean()),
            "noise_share_of_target_decoded_median": float(np.median(cat["noise_share_decoded"])),
            "noise_share_of_target_rendered_mean": float(cat["noise_share_rendered"].mean()),
        }
    shares = {n: out[n]["share_of_tubelets"] for n in groups}
    out["loss_floor_all_tubelets"] = sum(shares[n] * out[n]["noise_share_of_target_decoded_mean"] for n in groups)
    print(json.dumps(out, indent=1))


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.float64)


def object_mask(scene: dict, info: dict, clean_spec, index: int) -> np.ndarray:
    """(tubelets,) True where the object covers any pixel of the tubelet: the clean render of the scene
    differs from the same scene rendered without its object (its colours set to the background's)."""
    from videojepa.data import synth

    frames = synth.render_scene(clean_spec, info["seed"], index, scene["motion"], scene["appearance"]).astype(float)
    # the background alone: the same random draws, the object made fully transparent
    original = synth._shape_sdf
    try:
        synth._shape_sdf = lambda shape, qx, qy: np.full_like(qx, 1e3)
        empty = synth.render_scene(clean_spec, info["seed"], index, scene["motion"], scene["appearance"]).astype(float)
    finally:
        synth._shape_sdf = original
    changed = np.abs(frames - empty).max(-1) > 1  # F x H x W
    F, H, W = changed.shape
    x = changed.reshape(F // 2, 2, H // 8, 8, W // 8, 8).any((1, 3, 5))
    return x.reshape(-1)


if __name__ == "__main__":
    main()
