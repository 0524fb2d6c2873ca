"""Recipe: transfer learning: take torchvision's ResNet-18, freeze it, and train only a new last layer.

    python recipes/transfer_learning.py                        # coloured shapes, made in a temp folder
    python recipes/transfer_learning.py --images my_photos     # your own: my_photos/<class>/*.jpg
    python recipes/transfer_learning.py --pretrained           # ImageNet weights (torchvision downloads them once)
    python recipes/transfer_learning.py --weights resnet18-f37072fd.pth   # ... or a file you downloaded yourself
    python recipes/transfer_learning.py --quick                # tiny images, a few seconds (what CI runs)

A network trained on ImageNet has learned edges, textures and parts of objects in its early layers; those are
useful for almost any photo. Keep them (freeze the "backbone"), replace the last layer (the "head") with one
that has as many outputs as you have classes, and train only that: a few thousand weights instead of eleven
million, so a few hundred images and a CPU are enough. Without pretrained weights the frozen backbone is random
and the head learns from random features: it still trains, but worse; compare the two.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from trainer import Trainer
from trainer.components.data import build_data
from trainer.config import ImageFolderData
from trainer.logger import new_run_dir
from trainer.loop import Options

SHAPES = ("circle", "square", "triangle")


def make_shape_images(root: Path, per_class: int, size: int = 64, seed: int = 0) -> Path:
    """root/<shape>/<n>.png: one dark shape per picture, in a random colour and place, on a light background."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            background = tuple(rng.randrange(190, 256) for _ in range(3))
            colour = tuple(rng.randrange(0, 140) for _ in range(3))
            image = Image.new("RGB", (size, size), background)
            draw = ImageDraw.Draw(image)
            half = rng.uniform(0.25, 0.35) * size
            x, y = rng.uniform(half, size - half), rng.uniform(half, size - half)
            box = (x - half, y - half, x + half, y + half)
            if shape == "circle":
                draw.ellipse(box, fill=colour)
            elif shape == "square":
                draw.rectangle(box, fill=colour)
            else:
                draw.polygon([(x, y - half), (x - half, y + half), (x + half, y + half)], fill=colour)
            image.save(root / shape / f"{n:03d}.png")
    return root


def load_resnet18(weights: str | None, pretrained: bool) -> tuple[nn.Module, bool]:
    """ResNet-18 with weights from a local file, from torchvision's ImageNet download, or random.

    Returns the model and whether its weights are trained ones (False when they are random).
    """
    from torchvision.models import ResNet18_Weights, resnet18

    model = resnet18()
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)  # weights_only: no code runs from the file
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}  # the head is replaced
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [key for key in missing if not key.startswith("fc.")]:
            raise SystemExit(
                f"error: {weights} does not hold ResNet-18 weights (missing {missing[:3]}, unexpected "
                f"{unexpected[:3]}). Try: the file torchvision saves, resnet18-f37072fd.pth"
            )
        print(f"weights: {weights}")
        return model, True
    elif pretrained:
        imagenet = ResNet18_Weights.IMAGENET1K_V1
        try:
            model = resnet18(weights=imagenet)  # downloads once into the cache below, then reads it from there
            print("weights: ImageNet (IMAGENET1K_V1)")
            return model, True
        except OSError as error:  # no network (URLError is an OSError), a proxy, a full disk...
            cache = Path(torch.hub.get_dir()) / "checkpoints"
            print(
                f"could not download ResNet-18's ImageNet weights: {error}\n"
                f"  torchvision fetches them once from {imagenet.url}\n"
                f"  into {cache} (set TORCH_HOME to move it), and reads them from there afterwards.\n"
                f"  Offline? Download that file elsewhere, then: python recipes/transfer_learning.py --weights "
                f"PATH/{imagenet.url.rsplit('/', 1)[-1]}\n"
                "  Carrying on from random weights: the head still trains, but expect a lower accuracy.",
                file=sys.stderr,
            )
    else:
        print("weights: random (try --pretrained or --weights PATH)")
    return model, False


class FrozenBackbone(nn.Module):
    """A ResNet whose layers are all frozen except a new last layer `fc` with `num_classes` outputs."""

    def __init__(self, resnet: nn.Module, num_classes: int, freeze_statistics: bool = True):
        super().__init__()
        self.freeze_statistics = freeze_statistics
        for param in resnet.parameters():
            param.requires_grad_(False)  # no gradients: the optimizer never moves these weights
        resnet.fc = nn.Linear(resnet.fc.in_features, num_classes)  # a new layer trains (requires_grad by default)
        self.resnet = resnet

    def train(self, mode: bool = True) -> FrozenBackbone:
        # BatchNorm layers change their running mean and variance in training mode even when their weights are
        # frozen; a few hundred images would overwrite what ImageNet taught them, so keep them in evaluation mode.
        # Random weights have no statistics worth keeping: there, measuring them on our images keeps the
        # features at a sensible scale.
        super().train(mode)
        for module in self.resnet.modules() if self.freeze_statistics else ():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet(x)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=None, help="folder with one sub-folder per class; default: made here")
    parser.add_argument("--weights", default=None, help="a ResNet-18 state dict file (.pth) you downloaded")
    parser.add_argument("--pretrained", action="store_true", help="torchvision's ImageNet weights (downloads once)")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny images and few of them: a few seconds (for CI)")
    parser.add_argument("--runs", default="runs", help="run folders go in RUNS/recipe-transfer/<date-time>/")
    args = parser.parse_args(argv)
    image_size, epochs = (32, 3) if args.quick else (args.image_size, args.epochs)

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        images = args.images or make_shape_images(Path(scratch) / "shapes", per_class=40 if args.quick else 100)
        # leaptrain's image-folder reader: decodes every image once, resizes it, keeps the tensors in memory and
        # normalizes each batch with the folder's own mean and std (close to ImageNet's for ordinary photos).
        cfg = ImageFolderData(
            dataset="image_folder", root=str(images), image_size=image_size, batch_size=32, val_split=0.2
        )
        data = build_data(cfg, torch.device("cpu"), seed=0)

    resnet, pretrained = load_resnet18(args.weights, args.pretrained)
    model = FrozenBackbone(resnet, data.num_classes, freeze_statistics=pretrained)
    trainable = [param for param in model.parameters() if param.requires_grad]
    print(f"training {sum(p.numel() for p in trainable):,} of {sum(p.numel() for p in model.parameters()):,} weights")
    optimizer = torch.optim.AdamW(trainable, lr=3e-3)  # only the head's weights
    out_dir = new_run_dir(args.runs, "recipe-transfer")
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        epochs=epochs,
        out_dir=out_dir,
        options=Options(class_names=data.class_names),
    )
    return trainer.fit(data.train, data.val)


if __name__ == "__main__":
    main()
