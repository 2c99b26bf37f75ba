"""`videojepa demo`: SALT, V-JEPA and VideoMAE pretrained at matched FLOPs on synthetic videos, then probed.

    from videojepa.demo import SIZES, DemoSettings, run_demo
    results = run_demo(DemoSettings(out="runs/demo", size=SIZES["quick"]))

`run` holds the demo's steps (data, budget, training, probes; public so that experiments reuse them),
`report` the results.json schema and its Markdown table, `plots` the pictures of the runs.
"""

from videojepa.demo.run import METHODS, SIZES, DemoSettings, DemoSize, run_demo

__all__ = ["METHODS", "SIZES", "DemoSettings", "DemoSize", "run_demo"]
