"""The host driver (xaihls/driver.py): the register sequence, bit-exact with golden through the
Program-interpreter transport, and free of torch (a PYNQ board runs it with numpy only)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import xaihls
from tests.driver_project import write_driver_project
from tests.random_nets import stem_net
from xaihls.driver import Device, ModelTransport, WriteMemory, WriteRegister
from xaihls.errors import XaiHlsError
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.contract import REGISTER
from xaihls.plan.lowering import Buffers, Shape, lower


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A v2 project folder: its Program's DDR image and the project.json fields a driver reads."""
    entry = get_zoo_model("digits_gap")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                         methods=("gradient", "integrated_gradients", "guided_backprop"), ig_steps=4,
                         backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024))
    folder = write_driver_project(tmp_path_factory.mktemp("project"), acc.qgraph, program)
    return folder, acc, program, entry.samples()[0][:2]


def test_device_through_the_interpreter_equals_golden(project):
    folder, acc, program, x = project
    device = Device(folder, ModelTransport(program.total_bytes))
    assert np.array_equal(device.predict(x.numpy()), acc.predict(x).double().numpy())
    for method in acc.methods:
        got = device.attribute(x.numpy(), method)
        assert np.array_equal(got, acc.attribute(x, method).double().numpy()), method
    runs = device.run(x.numpy(), "integrated_gradients", target=3, steps=5, baseline=0.25, rule="middle")
    g = acc.run(x, "integrated_gradients", target=3, steps=5, baseline=torch.full_like(x, 0.25), rule="middle")
    assert all(r.target == 3 for r in runs)
    assert np.array_equal(np.stack([r.attribution for r in runs]), g.attribution.numpy())


def test_device_takes_and_returns_a_1d_models_shape(tmp_path):
    """A Conv1d model's project: the driver takes (N, C, L) images and baselines and returns (N, C, L)
    attributions (Grad-CAM's (N, 1, L)), equal to golden's."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
                                torch.nn.Conv1d(4, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 8, 3)).eval()
    acc = xaihls.compile(model, (2, 16), calibration=torch.randn(8, 2, 16), methods=("saliency",
                         "integrated_gradients", "grad_cam"), ig_steps=4, backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024))
    device = Device(write_driver_project(tmp_path, acc.qgraph, program), ModelTransport(program.total_bytes))
    x = torch.randn(2, 2, 16)
    for method in ("saliency", "grad_cam"):
        got = device.attribute(x.numpy(), method)
        assert got.shape == ((2, 1, 16) if method == "grad_cam" else (2, 2, 16))
        assert np.array_equal(got, acc.attribute(x, method).double().numpy()), method
    baseline = np.full((2, 16), 0.5)
    got = device.attribute(x.numpy(), "integrated_gradients", baseline=baseline)
    want = acc.attribute(x, "integrated_gradients", baseline=torch.tensor(baseline))
    assert np.array_equal(got, want.double().numpy())
    with pytest.raises(XaiHlsError, match="compiled for \\(N, 2, 16\\)"):
        device.predict(np.zeros((1, 2, 1, 16)))


def test_device_writes_and_reads_an_image_as_its_first_strides_phases(tmp_path):
    """A Conv1d model whose image runs as the 4 phases of its first stride (``capabilities.image_phases``, 8
    channels of 12 samples in DDR): the driver writes its (N, C, L) images and baselines in that view and returns
    (N, C, L) attributions, equal to golden's."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 6, stride=4, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv1d(4, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 12, 3)).eval()
    acc = xaihls.compile(model, (2, 48), calibration=torch.randn(8, 2, 48), methods=("input_x_gradient",
                         "integrated_gradients"), ig_steps=4, backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024), as_columns=True, as_phases=True)
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (8, 12, 1)
    device = Device(write_driver_project(tmp_path, acc.qgraph, program), ModelTransport(program.total_bytes))
    x = torch.randn(2, 2, 48)
    got = device.attribute(x.numpy(), "input_x_gradient")
    assert got.shape == (2, 2, 48) and np.array_equal(got, acc.attribute(x, "input_x_gradient").double().numpy())
    baseline = np.linspace(-1, 1, 96).reshape(2, 48)
    got = device.attribute(x.numpy(), "integrated_gradients", baseline=baseline)
    want = acc.attribute(x, "integrated_gradients", baseline=torch.tensor(baseline))
    assert np.array_equal(got, want.double().numpy())


def test_device_reads_a_grad_cam_map_on_the_phases_view_by_the_headers_stride(tmp_path):
    """A stem of stride 3 on 2 x 4 x 12 whose Grad-CAM runs on the view (18 channels of 2 x 4): the driver reads
    the map's view pixel back as 3 x 3 image pixels, the stride from the header's channels (the view's 4 rows over
    2 would say 2), and both Grad-CAM methods equal golden's."""
    model, shape, calibration = stem_net(8)
    acc = xaihls.compile(model, shape, calibration=calibration, methods=("grad_cam", "guided_grad_cam"),
                         backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024), as_phases=True)
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (18, 2, 4)
    device = Device(write_driver_project(tmp_path, acc.qgraph, program), ModelTransport(program.total_bytes))
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(8)) * 2.0 - 0.5
    for method in ("grad_cam", "guided_grad_cam"):
        got = device.attribute(x.numpy(), method)
        assert np.array_equal(got, acc.attribute(x, method).double().numpy()), method
    assert got.shape == (2, *shape)


def test_device_checks_its_arguments(project):
    folder, acc, program, x = project
    device = Device(folder, ModelTransport(program.total_bytes))
    for call, message in [(lambda: device.attribute(x.numpy(), "saliency"), "method 'saliency' was not compiled in"),
                          (lambda: device.predict(np.zeros((1, 3, 16, 16))), "compiled for \\(N, 1, 16, 16\\)"),
                          (lambda: device.attribute(x.numpy(), "gradient", target=2.5), "integers in 0..9"),
                          (lambda: device.attribute(x.numpy(), "integrated_gradients", steps=2000), "2..1024")]:
        with pytest.raises(XaiHlsError, match=message):
            call()
    with pytest.raises(XaiHlsError, match="the PYNQ transport needs the pynq package"):
        Device(folder)


class _FailingSecondRun(ModelTransport):
    """The interpreter, but the second start ends with BAD_ARGUMENT; records each call's operations."""

    def __init__(self, total_bytes):
        super().__init__(total_bytes)
        self.calls, self.starts = [], 0

    def execute_all(self, ops):
        self.calls.append(list(ops))
        return super().execute_all(ops)

    def _start(self):
        super()._start()
        self.starts += 1
        if self.starts == 2:
            self.registers[REGISTER["RETURN"]] = 4


def test_a_failing_run_names_its_image_and_stops_the_batch(project):
    folder, acc, program, x = project
    transport = _FailingSecondRun(program.total_bytes)
    device = Device(folder, transport)
    batch = np.concatenate([x.numpy()] * 3)
    with pytest.raises(XaiHlsError, match="image 1: the engine stopped with status 0x4 \\(BAD_ARGUMENT\\)"):
        device.predict(batch)
    # one run a call, the Program's image with the first only; the third image was never written
    assert len(transport.calls) == 2
    assert [op.offset for op in transport.calls[0] if isinstance(op, WriteMemory)][0] == 0
    assert all(op.offset for op in transport.calls[1] if isinstance(op, WriteMemory))


def test_the_driver_imports_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import xaihls.driver\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_device_runs_image_batches_on_a_program_with_batched_lists(project, tmp_path):
    """A Program of 2 slots: 5 images are two image-batch starts and one single start, each
    image's results (and targets, given or predicted) equal golden; IG stays one image a start;
    a failing batch start names its images."""
    _, acc, _, _ = project
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024), batch=2)
    folder = write_driver_project(tmp_path, acc.qgraph, program)
    x = get_zoo_model("digits_gap").samples()[0][:5]
    transport = _FailingSecondRun(program.total_bytes)
    transport.starts = -10  # no failure for now
    device = Device(folder, transport)
    for method, target in ((None, None), ("gradient", None), ("guided_backprop", torch.tensor([1, 2, 3, 4, 5]))):
        runs = device.run(x.numpy(), method, target=None if target is None else target.numpy())
        g = acc.run(x, method, target=target)
        assert np.array_equal(np.stack([r.logits for r in runs]), g.logits.numpy()), method
        if method:
            assert [r.target for r in runs] == g.target.tolist(), method
            assert np.array_equal(np.stack([r.attribution for r in runs]), g.attribution.numpy()), method
        assert all(not r.saturations for r in runs[1:2] + runs[3:4]), "an image batch's counters are its first image's"
    assert images_of(transport)[-3:] == [2, 2, 1]
    runs = device.run(x[:2].numpy(), "integrated_gradients", steps=4)
    assert images_of(transport)[-2:] == [1, 1]
    g = acc.run(x[:2], "integrated_gradients", steps=4)
    assert np.array_equal(np.stack([r.attribution for r in runs]), g.attribution.numpy())
    transport.starts = 0
    with pytest.raises(XaiHlsError, match="images 2..3: the engine stopped with status 0x4"):
        device.predict(x.numpy())


def images_of(transport) -> list[int]:
    return [op.value for call in transport.calls for op in call
            if isinstance(op, WriteRegister) and op.offset == REGISTER["IMAGES"]]
