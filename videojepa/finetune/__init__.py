"""Fine-tuning an encoder end to end on labelled videos: what `videojepa finetune CONFIG` runs.

    from videojepa.config import load_config
    from videojepa.finetune import FinetuneConfig, run_finetune, load_classifier
    results = run_finetune(load_config("demo/finetune", ["finetune.checkpoint=runs/vjepa"], schema=FinetuneConfig))
    labels = load_classifier("runs/demo/finetune/best").predict(video)

`config` (the schema), `model` (the `Classification` task the trainer trains), `head` (attentive pooler or
mean-pool + linear), `layer_decay` (parameter groups), `data` (repeated augmentation and the mixing collate),
`randaugment`, `erasing`, `mixup` (the augmentations, one small function each), `evaluate` (the multi-view
test), `export` (best/last classifier folders), `report` (results.json / results.md), `runner` (the command).
"""

from videojepa.finetune.config import FinetuneConfig
from videojepa.finetune.export import load_classifier
from videojepa.finetune.runner import run_finetune

__all__ = ["FinetuneConfig", "run_finetune", "load_classifier"]
