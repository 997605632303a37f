"""Grad-CAM and guided Grad-CAM on the Engine v2 RTL (Verilator): what a run costs beside
inference and saliency, and the Grad-CAM list's jobs against the cycle model.

Run: ``python -m benchmarks.grad_cam [--models resnet8 ... kws_98x40] [--board pynq-z2]
[--before]``, under the shared heavy-tool lock. ``resnet18_64`` is ResNet-18's layout (``resnet18``
below) on 3 x 64 x 64, whose 2 x 2 map is upsampled by 32; ``mnist_3x3``, ``kws_98x40`` and
``ecg_187`` are plain CNNs (``CONV_POOL_NETS``) whose maps PyTorch's nearest table stretches by no
integer factor. ``--before``
runs the Grad-CAM list as it was before 2026-12-06: ``capabilities.UPSAMPLING_STAGES`` off (one stage
of the whole factor, at most 15: resnet18_64 and vww_mobilenet are then refused; with it the
stretches of ``capabilities.UPSAMPLING_GATHER``: mnist_3x3, kws_98x40 and ecg_187 refused),
``capabilities.UPSAMPLING_CROP`` off (the input a multiple of the map: ds_cnn refused) and
``lowering.CAM_SUMS`` off (the channel weights one pass a pixel). For each model (random weights,
one calibration image; a model no Program can run: its refusal): the planner's engine and Program
for the board, compiled with saliency and both Grad-CAM methods (the default layer: the last
convolution), simulated on one Verilator build (SystemVerilog DDR model at latency 24) for predict,
saliency, grad_cam and guided_grad_cam; every run compared with the golden model bit for bit, every
run's cycles with ``timing.method_cycles`` and every job of the Grad-CAM list (profile phase
"grad-cam") and of the backward prefix before it with ``timing.job_cost``. Results in
benchmarks/results/grad_cam.json (grad_cam_before.json with ``--before``).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np
import torch
from torch import nn

import xaihls
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.executor import quantize_input
from xaihls.plan.contract import network_image, view_phases
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import capabilities, lowering
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2
from xaihls.plan.timing import job_cost, method_cycles

RESULTS = Path(__file__).parent / "results"
RUNS = (None, "saliency", "grad_cam", "guided_grad_cam")


class _Basic(nn.Module):
    """torchvision's BasicBlock: two 3 x 3 convs with BatchNorm, a 1 x 1 projection where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        self.shortcut = (nn.Sequential() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def resnet18(width: int = 16, classes: int = 10) -> nn.Module:
    """ResNet-18's layout (a 7 x 7 stride-2 stem, a 3 x 3 max-pool of stride 2 padded 1, BasicBlocks
    2-2-2-2 at width, 2, 4 and 8 times it, a global pool and a Linear) at ``width``, with random
    weights and BatchNorm statistics; its last map is 1/32 of the input."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1)]
    c = width
    for stage, c_out in enumerate((width, 2 * width, 4 * width, 8 * width)):
        layers += [_Basic(c, c_out, 1 if stage == 0 else 2), _Basic(c_out, c_out, 1)]
        c = c_out
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _conv_pool_net(shape: tuple[int, ...], widths: tuple[int, ...], classes: int) -> nn.Module:
    """'Same' convolutions of 3 (3 x 3) with BatchNorm and ReLU, a max-pool of 2 (2 x 2) after each but
    the last, a global average pool and a Linear: the plain CNN of an MNIST, keyword-spotting or ECG
    tutorial, 1-D for an input (C, L)."""
    torch.manual_seed(0)
    conv, norm, pool, gap = ((nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d) if len(shape) == 2 else
                             (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d))
    layers: list[nn.Module] = []
    c = shape[0]
    for i, width in enumerate(widths):
        layers += [conv(c, width, 3, padding=1, bias=False), norm(width), nn.ReLU()]
        layers += [pool(2)] if i < len(widths) - 1 else []
        c = width
    model = nn.Sequential(*layers, gap(1), nn.Flatten(), nn.Linear(c, classes))
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


# nets defined here: (input shape, convolution widths, classes). mnist_3x3: four convolutions on 28 x 28, the last
# on a 3 x 3 map (rows and columns: by 4, then 7/3); kws_98x40: a keyword-spotting CNN on 98 frames of 40 log-mel
# bins, its last map 12 x 5 (rows by 7 then 7/6; columns by 8); ecg_187: a 1-D CNN on an MIT-BIH heartbeat of 187
# samples, its last map 23 samples (by 11 then 17/23: 17 phases, past a job's output stride of 15)
CONV_POOL_NETS = {"mnist_3x3": ((1, 28, 28), (16, 32, 32, 64), 10), "kws_98x40": ((1, 98, 40), (16, 32, 32, 64), 12),
                  "ecg_187": ((1, 187), (16, 32, 32, 64), 5)}


def _model(name: str) -> tuple[nn.Module, tuple[int, ...], torch.Tensor]:
    if name == "resnet18_64":
        return resnet18(), (3, 64, 64), torch.rand((8, 3, 64, 64), generator=torch.Generator().manual_seed(1))
    if name in CONV_POOL_NETS:
        shape, widths, classes = CONV_POOL_NETS[name]
        return (_conv_pool_net(shape, widths, classes), shape,
                torch.rand((8, *shape), generator=torch.Generator().manual_seed(1)))
    entry = get_zoo_model(name)
    return entry.build(), entry.input_shape, entry.calibration()[:8]


def measure(model: str, board: str) -> dict:
    module, shape, calibration = _model(model)
    acc = xaihls.compile(module, shape, calibration=calibration, backends=("golden",),
                         methods=("saliency", "grad_cam", "guided_grad_cam"))
    refusal = capabilities.program_refusal(acc.qgraph)
    if refusal is not None:
        return {"model": model, "board": board, "refused": refusal}
    plan = plan_v2(acc.qgraph, load_board(board))
    program, engine = plan.program, plan.engine
    model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
    x = calibration[:1]
    x_q = quantize_input(acc.qgraph, acc.graph.as_maps(x))[0][0].numpy()  # a 1-D net's (C, L) as a (C, 1, L) map
    runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": sim.ig_table(2, "trapezoid", acc.qgraph.width),
             "target": -1, "steps": 2, "method": PREDICT_CODE if m is None else METHOD_CODES[m]} for m in RUNS]
    res = sim.simulate(program, rtl_params(program, engine), runs)
    rows, image = [], acc.graph.input_shape
    phases = view_phases(program.header, image)  # the view (phases) read back
    for m, r in zip(RUNS, res):
        g = acc.run(x, m) if m else acc.run(x)
        attribution = r["attribution"] if m is None else network_image(r["attribution"], image, phases)
        exact = (r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy()) and (
            m is None or np.array_equal(attribution.ravel(), g.attribution[0].numpy().ravel())))
        rows.append({"run": m or "predict", "cycles": r["cycles"], "model_cycles": method_cycles(program, model_engine, m),
                     "bit_exact": bool(exact)})
    layers = acc.qgraph.graph.layers
    names = [layer.name for layer in layers] + ["logits"]
    grad_cam = res[RUNS.index("grad_cam")]["profile"]
    prefix = [c for k, c in grad_cam if k == "backward"]
    listed = [c for k, c in grad_cam if k == "grad-cam"]
    jobs = []
    for kind, direction, descs, measured in (("backward prefix", "backward", program.backward, prefix),
                                             ("grad-cam list", "cam", program.cam, listed)):
        assert len(measured) == (program.header["n_backward_cam"] if kind == "backward prefix" else len(descs)), kind
        for i, (d, cycles) in enumerate(zip(descs, measured)):
            model_cycles = job_cost(d, model_engine, direction).cycles
            jobs.append({"list": kind, "index": i, "layer": names[d.layer], "rtl": cycles, "model": model_cycles,
                         "deviation": cycles / model_cycles - 1})
    h = program.header
    return {"model": model, "board": board, "tm": engine.tm, "tn": engine.tn, "cam_layer": acc.qgraph.cam_layer,
            "image": [h["in_c"], h["in_h"], h["in_w"]],
            "stages": [[str(gy), str(gx)] for gy, gx in capabilities.upsampling(program.qgraph)], "runs": rows,
            "jobs": jobs}


def markdown(result: dict) -> str:
    if "refused" in result:
        return f"**{result['model']} on {result['board']}**: refused at compile: {result['refused']}"
    predict = result["runs"][0]["cycles"]
    stages = " then ".join(f"{fy} x {fx}" for fy, fx in result["stages"])
    image = " x ".join(map(str, result["image"]))
    lines = [f"**{result['model']} on {result['board']}** ({result['tm']} x {result['tn']}; image in DDR {image}; "
             f"Grad-CAM layer '{result['cam_layer']}', upsampled by {stages})", "",
             "| run | cycles | x predict | model | RTL vs model | bit-exact |",
             "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['run']} | {r['cycles']:,} | {r['cycles'] / predict:.2f} | {r['model_cycles']:,} | "
                     f"{r['cycles'] / r['model_cycles'] - 1:+.1%} | {'yes' if r['bit_exact'] else 'NO'} |")
    lines += ["", "| list | # | layer | RTL cycles | model | RTL vs model |", "|---|---|---|---|---|---|"]
    lines += [f"| {j['list']} | {j['index']} | {j['layer']} | {j['rtl']:,} | {j['model']:,} | {j['deviation']:+.1%} |"
              for j in result["jobs"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+",
                    default=["resnet8", "mobilenet_v2_tiny", "ds_cnn", "vww_mobilenet", "resnet18_64", "mnist_3x3",
                             "kws_98x40", "ecg_187"])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--before", action="store_true",
                    help="the Grad-CAM list as before: one upsampling stage, no crop or stretch, channel weights "
                         "a pass a pixel")
    args = ap.parse_args()
    capabilities.UPSAMPLING_STAGES = capabilities.UPSAMPLING_CROP = lowering.CAM_SUMS = not args.before
    results = [measure(m, args.board) for m in args.models]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("grad_cam_before.json" if args.before else "grad_cam.json")).write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2)
                                           + "\n")
    for r in results:
        print(markdown(r) + "\n")


if __name__ == "__main__":
    main()
