"""Recipe: work out a small network's gradients by hand with the chain rule, and check them against autograd.

    python recipes/autograd_vs_chain_rule.py            # the check, then a few epochs of training
    python recipes/autograd_vs_chain_rule.py --quick    # the same in a few seconds (what CI runs)

Training needs d(loss)/d(parameter) for every weight. `loss.backward()` computes all of them; this file
computes the same numbers with pencil-and-paper matrix calculus, prints both side by side and checks that they
agree to about 15 digits. Once you have seen that, you may trust autograd: the rest of leaptrain (and the last
part of this file) never writes a derivative again.
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from trainer import Trainer
from trainer.components.splits import InMemoryLoader
from trainer.logger import new_run_dir


class TwoLayerNet(nn.Module):
    """x -> linear -> tanh -> linear: the smallest network that is not a straight line."""

    def __init__(self, inputs: int, hidden: int, outputs: int):
        super().__init__()
        self.hidden = nn.Linear(inputs, hidden)
        self.out = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


def gradients_by_hand(model: TwoLayerNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """d(loss)/d(parameter) for every parameter, with loss = mean((model(x) - y)^2), by the chain rule.

    Shapes: x is N x D, W1 is H x D, b1 is H, W2 is O x H, b2 is O, y is N x O. nn.Linear computes x @ W.T + b.
    """
    w1, b1 = model.hidden.weight, model.hidden.bias
    w2, b2 = model.out.weight, model.out.bias
    with torch.no_grad():  # we do the bookkeeping ourselves here, autograd must not record anything
        # Forward pass, keeping every intermediate value: the backward pass needs them.
        z = x @ w1.T + b1  # N x H, the hidden layer before its activation
        h = torch.tanh(z)  # N x H
        out = h @ w2.T + b2  # N x O, the prediction
        # loss = (1 / (N*O)) * sum over n, o of (out[n,o] - y[n,o])^2, a single number.

        # Backward pass: start from the loss and go back one operation at a time. At each step, the gradient of
        # the loss with respect to an intermediate value has that value's shape, and the chain rule says:
        # d(loss)/d(input of an operation) = d(loss)/d(its output) times d(its output)/d(its input).

        # 1. The mean of squares: d/d(out[n,o]) of (1/(N*O)) * (out[n,o] - y[n,o])^2 = 2 (out - y) / (N*O).
        d_out = 2 * (out - y) / out.numel()  # N x O
        # 2. out = h @ W2.T + b2. out[n,o] = sum over j of h[n,j] W2[o,j] + b2[o], so
        #    d(out[n,o])/d(W2[o,j]) = h[n,j]; summing over the samples n that all used W2:
        #    d(loss)/d(W2[o,j]) = sum over n of d_out[n,o] h[n,j], that is d_out.T @ h (O x H, W2's shape).
        d_w2 = d_out.T @ h
        #    b2[o] is added to every sample's out[n,o] with factor 1: its gradient is d_out summed over n.
        d_b2 = d_out.sum(dim=0)
        #    h[n,j] reaches every out[n,o] through W2[o,j]: d(loss)/d(h[n,j]) = sum over o of d_out[n,o] W2[o,j].
        d_h = d_out @ w2  # N x H
        # 3. h = tanh(z), element by element, and tanh'(z) = 1 - tanh(z)^2 = 1 - h^2: multiply element-wise.
        d_z = d_h * (1 - h**2)  # N x H
        # 4. z = x @ W1.T + b1: the same rule as step 2, one layer further back.
        d_w1 = d_z.T @ x  # H x D
        d_b1 = d_z.sum(dim=0)  # H
        # (d(loss)/dx = d_z @ W1 too, but x is data, not a parameter: nothing will update it.)
    return {"hidden.weight": d_w1, "hidden.bias": d_b1, "out.weight": d_w2, "out.bias": d_b2}


def gradients_by_autograd(model: TwoLayerNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same gradients the way every training loop gets them: forward, loss, backward, read param.grad."""
    model.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)  # the mean of (model(x) - y)^2, as above
    loss.backward()  # autograd walks the recorded operations backwards, applying the chain rule for us
    return {name: param.grad.clone() for name, param in model.named_parameters()}


def check_gradients(seed: int = 0) -> float:
    """Both ways on one small batch, printed side by side; returns the largest difference (and asserts it is tiny)."""
    torch.manual_seed(seed)
    # float64: with 53-bit numbers both ways agree to ~1e-15, so any real mistake stands out at once.
    model = TwoLayerNet(inputs=3, hidden=5, outputs=2).double()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    by_hand, by_autograd = gradients_by_hand(model, x, y), gradients_by_autograd(model, x, y)

    print(f"{'parameter':<15}{'shape':<10}{'by hand (first values)':<36}{'autograd (first values)':<36}max |diff|")
    largest = 0.0
    for name, hand in by_hand.items():
        auto = by_autograd[name]
        difference = (hand - auto).abs().max().item()
        largest = max(largest, difference)
        first = ", ".join(f"{v:+.4f}" for v in hand.flatten()[:3].tolist())
        first_auto = ", ".join(f"{v:+.4f}" for v in auto.flatten()[:3].tolist())
        print(f"{name:<15}{'x'.join(map(str, hand.shape)):<10}{first:<36}{first_auto:<36}{difference:.1e}")
        assert torch.allclose(hand, auto, rtol=1e-10, atol=1e-12), f"{name}: the chain rule and autograd disagree"
    print(f"largest difference: {largest:.1e}: the chain rule and autograd agree, so from here on autograd does it")
    return largest


def toy_problem(samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """y = sin(x) plus a little noise, for x in [-pi, pi]: a curve a straight line cannot follow, but tanh units can."""
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(samples, 1, generator=generator) * 2 - 1) * math.pi
    return x, torch.sin(x) + 0.05 * torch.randn(samples, 1, generator=generator)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer samples and epochs: a few seconds (for CI)")
    parser.add_argument("--runs", default="runs", help="run folders go in RUNS/recipe-chain-rule/<date-time>/")
    args = parser.parse_args(argv)

    largest_difference = check_gradients()

    # The same network, now trained by the Trainer, whose loop calls loss.backward() exactly as above.
    torch.manual_seed(0)
    samples, epochs = (512, 10) if args.quick else (2000, args.epochs)
    train_x, train_y = toy_problem(samples, seed=1)
    test_x, test_y = toy_problem(500, seed=2)
    train_loader = InMemoryLoader(train_x, train_y, batch_size=32, shuffle=True)
    test_loader = InMemoryLoader(test_x, test_y, batch_size=500, shuffle=False)
    model = TwoLayerNet(inputs=1, hidden=16, outputs=1)
    with torch.no_grad():  # the error before any training, to see how far the Trainer brings it down
        loss_before = nn.functional.mse_loss(model(test_x), test_y).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    out_dir = new_run_dir(args.runs, "recipe-chain-rule")
    trainer = Trainer(model, nn.MSELoss(), optimizer, epochs=epochs, out_dir=out_dir, log_every=10)
    metrics = trainer.fit(train_loader, test_loader=test_loader)
    print(f"test loss (MSE) before training {loss_before:.4f}, after {metrics['test/loss']:.4f}; run in {out_dir}")
    return {"grad/max_difference": largest_difference, "test/loss_before": loss_before, **metrics}


if __name__ == "__main__":
    main()
