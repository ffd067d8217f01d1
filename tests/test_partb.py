"""Part B: the course UNet, the trainers (through the CLI), checkpoints, datasets and samplers."""

import gzip
import json
import re
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from lab.__main__ import main as cli
from lab.checkpoint import CheckpointError, latest_checkpoint, load_trained
from lab.data import DatasetMissing, load_dataset, read_idx
from lab.generate import flow_sample
from lab.train import TrainingDiverged, train
from lab.train_config import course_config
from models.files import load_model_file, save_model_file
from models.unet import CourseUNet, UNetConfig


@pytest.mark.parametrize(
    "config",
    [UNetConfig(8), UNetConfig(8, time="add"), UNetConfig(8, time="mul"), UNetConfig(8, time="add", num_classes=10)],
)
def test_unet_has_the_courses_shapes(config):
    model = CourseUNet(config).eval()
    shapes = {}
    for name in ("conv_in", "down1", "down2", "flatten", "unflatten", "up1", "up2", "conv_out"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
    D, x = 8, torch.rand(3, 1, 28, 28)
    out = model(x, torch.rand(3), torch.eye(10)[:3])
    assert shapes == {
        "conv_in": (3, D, 28, 28),
        "down1": (3, D, 14, 14),
        "down2": (3, 2 * D, 7, 7),
        "flatten": (3, 2 * D, 1, 1),
        "unflatten": (3, 2 * D, 7, 7),
        "up1": (3, D, 14, 14),
        "up2": (3, D, 28, 28),
        "conv_out": (3, 1, 28, 28),
    }
    assert out.shape == x.shape
    assert isinstance(model.unflatten[0], torch.nn.ConvTranspose2d) and model.unflatten[0].kernel_size == (7, 7)
    assert isinstance(model.flatten[0], torch.nn.AvgPool2d)


def test_time_and_class_change_the_output():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 28, 28)
    for time_mode in ("add", "mul"):
        m = CourseUNet(UNetConfig(8, time=time_mode)).eval()
        assert not torch.allclose(m(x, torch.tensor([0.1, 0.1])), m(x, torch.tensor([0.9, 0.9])))
    m = CourseUNet(UNetConfig(8, time="add", num_classes=10)).eval()
    t = torch.tensor([0.5, 0.5])
    assert not torch.allclose(m(x, t, torch.eye(10)[[1, 1]]), m(x, t, torch.eye(10)[[7, 7]]))
    assert not torch.allclose(m(x, t, torch.zeros(2, 10)), m(x, t, torch.eye(10)[[1, 1]]))


def test_the_better_unet_normalises_each_image_alone_and_feeds_t_as_sinusoids():
    """The CS280A better UNet (GroupNorm, sinusoidal time features): in training, as in sampling, an image's output does
    not depend on the other images of its batch (BatchNorm's does: it normalises by the batch); t reaches the FCBlocks
    as 32 features; it trains, and its checkpoint and its bundled file load back as that UNet."""
    torch.manual_seed(0)
    x, t = torch.rand(4, 1, 28, 28), torch.rand(4)
    for unet, alone in (("course", False), ("better", True)):
        model = CourseUNet(course_config("flow", "time", D=8, unet=unet).unet_config()).train()
        with torch.no_grad():
            together, first = model(x, t), model(x[:2], t[:2])
        assert torch.allclose(together[:2], first, atol=1e-5) == alone, unet
    model = CourseUNet(course_config("flow", "time", D=8, unet="better").unet_config())
    assert model.t1[0].in_features == 32 and model.config.norm == "group"
    with pytest.raises(ValueError, match="unet must be one of"):
        course_config("flow", "time", unet="best").validate()
    with pytest.raises(ValueError, match="multiple of 8"):
        CourseUNet(UNetConfig(12, time="mul", norm="group"))


def test_the_cli_trains_the_better_unet_and_it_loads_back_as_itself(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--experiment", "flow", "--D", "8", "--max-steps", "3", "--batch", "8", "--unet", "better"]
    assert cli([*args, "--out", str(run)]) == 0
    model, config = load_trained(run)
    assert (model.config.norm, model.config.time_features, config["unet"]) == ("group", 32, "better")
    save_model_file(tmp_path / "better.safetensors", model, {"train": config}, dtype=torch.float32)
    again, _ = load_model_file(tmp_path / "better.safetensors")
    x, t = torch.rand(2, 1, 28, 28), torch.rand(2)
    assert torch.equal(model.eval()(x, t), again.eval()(x, t))


@pytest.mark.parametrize(
    "experiment,condition",
    [
        ("denoiser", None),
        ("pure_noise", None),
        ("ddpm", "time"),
        ("ddpm", "class"),
        ("flow", "time"),
        ("flow", "class"),
    ],
)
def test_cli_trains_each_course_experiment(tmp_path, experiment, condition):
    args = [
        "train",
        "--experiment",
        experiment,
        "--D",
        "4",
        "--epochs",
        "2",
        "--max-steps",
        "4",
        "--batch",
        "16",
        "--T",
        "10",
        "--out",
        str(tmp_path / "run"),
    ] + (["--condition", condition] if condition else [])
    assert cli(args) == 0
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    assert all(np.isfinite(h["loss"]) and h["images_per_s"] > 0 for h in history)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    defaults = course_config(experiment, condition)
    assert (config["lr"], config["lr_schedule"]) == (defaults.lr, defaults.lr_schedule)  # the course's defaults
    model, train_config = load_trained(tmp_path / "run")
    assert model.config.D == 4 and train_config["experiment"] == experiment
    if experiment in ("ddpm", "flow"):
        out = tmp_path / "s.npz"
        assert (
            cli(
                [
                    "sample",
                    "--checkpoint",
                    str(tmp_path / "run"),
                    "--out",
                    str(out),
                    "--per-class",
                    "2",
                    "--n",
                    "6",
                    "--steps",
                    "5",
                ]
            )
            == 0
        )
        data = np.load(out)
        n = 20 if condition == "class" else 6
        assert data["images"].shape == (n, 1, 28, 28) and data["images"].dtype == np.float32
        assert 0 <= data["images"].min() and data["images"].max() <= 1
        assert data["labels"].tolist() == (np.repeat(np.arange(10), 2).tolist() if condition == "class" else [-1] * 6)
        assert out.with_suffix(".png").exists()


def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path):
    config = course_config("ddpm", "class", D=4, epochs=2, batch_size=500, T=20, sample_every=0, precision="fp32")
    for _ in train(config, tmp_path / "straight"):
        pass
    steps = []
    for event in train(config, tmp_path / "stopped", stop=lambda: len(steps) >= 13):
        if event["kind"] == "step":
            steps.append(event)
    assert event["kind"] == "stopped" and event["step"] == 13  # mid-way through epoch 2 (9 steps per epoch)
    kinds = [e["kind"] for e in train(config, tmp_path / "stopped", resume=True)]
    assert kinds.count("step") == 18 - 13 and kinds[-1] == "done"
    a, _ = load_trained(tmp_path / "straight")
    b, _ = load_trained(tmp_path / "stopped")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    losses = [json.loads(line)["loss"] for line in (tmp_path / "stopped" / "history.jsonl").read_text().splitlines()]
    straight = [json.loads(line)["loss"] for line in (tmp_path / "straight" / "history.jsonl").read_text().splitlines()]
    assert losses == straight


def test_nan_loss_stops_the_run_with_a_message(tmp_path, monkeypatch):
    import lab.train

    monkeypatch.setattr(lab.train, "loss_fn", lambda *a: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 1 \(epoch 1\): lower the learning rate"):
        for _ in train(course_config("flow", "time", D=4, max_steps=3), tmp_path / "run"):
            pass
    assert cli(["train", "--experiment", "flow", "--D", "4", "--out", str(tmp_path / "run2")]) == 2


def test_bad_checkpoints_get_clear_errors(tmp_path):
    model = CourseUNet(UNetConfig(4, time="add"))
    good = tmp_path / "m.safetensors"
    save_model_file(good, model, {"train": {"experiment": "ddpm"}})
    loaded, meta = load_model_file(good)
    assert loaded.config == model.config and meta["train"] == {"experiment": "ddpm"}
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut.safetensors is not a readable safetensors file .* truncated"):
        load_model_file(truncated)
    pickled = tmp_path / "model.pth"
    torch.save(model.state_dict(), pickled)
    with pytest.raises(
        CheckpointError, match=r"model.pth is a pickle \(torch.save\) file; the lab loads only safetensors"
    ):
        load_model_file(pickled)
    other = tmp_path / "other.safetensors"
    save_model_file(other, CourseUNet(UNetConfig(8, time="add")), {})
    data = other.read_bytes()
    good_header = json.loads(data[8 : 8 + struct.unpack("<Q", data[:8])[0]])
    assert json.loads(good_header["__metadata__"]["unet"])["D"] == 8
    from safetensors.torch import load_file, save_file

    save_file(
        load_file(other),
        tmp_path / "mislabelled.safetensors",
        metadata={"unet": json.dumps(UNetConfig(4, time="add").to_dict())},
    )
    with pytest.raises(
        CheckpointError, match=r"mislabelled.safetensors does not hold a course UNet with .*D=4.* has shape"
    ):
        load_model_file(tmp_path / "mislabelled.safetensors")
    with pytest.raises(CheckpointError, match=r"nowhere has no checkpoint"):
        load_trained(tmp_path / "nowhere")


def test_bundled_mnist_split_is_fixed_and_disjoint():
    train_set, heldout = load_dataset("mnist", "train"), load_dataset("mnist", "heldout")
    assert (len(train_set), len(heldout)) == (4500, 500)
    assert heldout.labels.bincount().tolist() == [50] * 10
    assert train_set.images.dtype == torch.uint8 and train_set.images.shape[1:] == (28, 28)
    train_keys = {bytes(im.numpy()) for im in train_set.images}
    assert not any(bytes(im.numpy()) in train_keys for im in heldout.images)
    assert torch.equal(load_dataset("mnist", "heldout").images, heldout.images)  # the same split every time


def write_idx(path, array, gz):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folders_load_and_bad_ones_say_what_to_do(tmp_path, gz):
    suffix = ".gz" if gz else ""
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28))
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(6), gz)
    ds = load_dataset("fashion_mnist", "train", tmp_path)
    assert torch.equal(ds.images, torch.from_numpy(images.astype(np.uint8))) and ds.labels.tolist() == list(range(6))
    with pytest.raises(
        DatasetMissing, match=r"t10k-images-idx3-ubyte\[.gz\] not found in .*apt-get install dataset-fashion-mnist"
    ):
        load_dataset("fashion_mnist", "heldout", tmp_path)
    with pytest.raises(DatasetMissing, match=r"python -m lab download-mnist"):
        load_dataset("mnist", "heldout", tmp_path)
    raw = tmp_path / "cut"
    raw.write_bytes(struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">3I", 6, 28, 28) + b"\0" * 100)
    with pytest.raises(ValueError, match=r"cut is truncated: header says \(6, 28, 28\)"):
        read_idx(raw)
    raw.write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match=r"is not an IDX file"):
        read_idx(raw)


def test_flow_sampler_makes_one_batched_call_per_step_and_records_its_trajectory():
    model = CourseUNet(UNetConfig(4, time="mul", num_classes=10)).eval()
    batches, seen = [], []
    model.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    labels = torch.arange(10)
    out = flow_sample(
        model, labels, 10, steps=7, scale=5.0, generator=torch.Generator().manual_seed(0), callback=seen.append
    )
    assert batches == [20] * 7 and [s["t"] for s in seen] == [i / 7 for i in range(7)]
    assert torch.equal(seen[-1]["x"], out)
    again = flow_sample(model, labels, 10, steps=7, scale=5.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_initial_weights_depend_on_the_seed_only_and_leave_the_global_rng_alone():
    import threading

    from lab.train import initial_model

    config = course_config("ddpm", "class", D=8)
    reference = initial_model(config).state_dict()
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    models = [None] * 4

    def build(i):
        models[i] = initial_model(config)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.equal(torch.random.get_rng_state(), before)
    for m in models:
        assert all(torch.equal(v, reference[k]) for k, v in m.state_dict().items())
    other = initial_model(replace(config, seed=1)).state_dict()
    assert not torch.equal(other["conv_in.0.0.weight"], reference["conv_in.0.0.weight"])


def test_precision_auto_takes_bf16_only_where_the_device_computes_it_natively(monkeypatch):
    """bf16 autocast on a CPU without AVX-512 BF16 or AMX is emulated: 74 against 502 img/s in fp32 on an AVX2 AMD
    EPYC (D = 16, batch 64), so a run there must not default to it."""
    import torch

    from lab.train_config import TrainConfig

    for avx512_bf16, amx, expected in ((False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert TrainConfig().validate().precision == expected
        assert course_config("flow", "class").precision == expected  # what the CLI and the Train live page use
    assert TrainConfig(precision="bf16").validate().precision == "bf16"  # asked for: kept
    from lab.train_config import native_precision

    for bf16_gpu, expected in ((False, "fp32"), (True, "bf16")):  # a GPU: bf16 where it computes bf16 (Ampere on)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda v=bf16_gpu: v)
        assert native_precision("cuda") == native_precision("cuda:1") == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no GPU: the config says so, it does not fall back
    with pytest.raises(ValueError, match="use device cpu"):
        TrainConfig(device="cuda").validate()


def test_safetensors_files_of_any_header_length_load_and_pickles_are_refused(tmp_path):
    """A safetensors file starts with its header's length: whenever its low byte is 0x80 (1 in 256 lengths), it was
    taken for pickle's magic number and a valid checkpoint was refused (the optimizer file of a D = 7 run, say)."""
    from safetensors.torch import save_file

    from models.files import read_safetensors

    tensors = {"w": torch.arange(6.0).view(2, 3)}
    lengths = set()
    for pad in range(300):  # metadata of every length: header lengths run through every possible low byte
        path = tmp_path / f"t{pad}.safetensors"
        save_file(tensors, str(path), metadata={"note": "x" * pad})
        lengths.add(struct.unpack("<Q", path.read_bytes()[:8])[0] % 256)
        loaded, meta = read_safetensors(path)
        assert torch.equal(loaded["w"], tensors["w"]) and meta["note"] == "x" * pad
    assert lengths == set(range(0, 256, 8))  # safetensors pads its header to a multiple of 8: 0x80 among them
    for name, kwargs in (("zip.pth", {}), ("legacy.pth", {"_use_new_zipfile_serialization": False})):
        torch.save(tensors, tmp_path / name, **kwargs)
        with pytest.raises(CheckpointError, match="is a pickle"):
            read_safetensors(tmp_path / name)


def test_resume_applies_new_learning_rate_and_length_and_refuses_what_cannot_change(tmp_path, capsys):
    """The NaN message says "lower the learning rate ... and resume": a resume with --lr and --max-steps must use them
    (it silently kept the checkpoint's), and one that asks for another D must say it cannot."""
    run = str(tmp_path / "run")
    base = [
        "train",
        "--experiment",
        "flow",
        "--condition",
        "time",
        "--D",
        "4",
        "--batch",
        "500",
        "--epochs",
        "3",
        "--out",
        run,
    ]
    assert cli(base + ["--max-steps", "3", "--lr", "1e-2"]) == 0
    assert cli(["train", "--out", run, "--resume", "--lr", "1e-5", "--max-steps", "6", "--grad-clip", "0.5"]) == 0
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert history[2]["lr"] == pytest.approx(1e-2) and history[3]["lr"] == pytest.approx(1e-5)  # from the resume on
    _, config = load_trained(tmp_path / "run")
    assert (config["lr"], config["max_steps"], config["grad_clip"], config["experiment"]) == (1e-5, 6, 0.5, "flow")
    capsys.readouterr()
    assert cli(["train", "--out", run, "--resume", "--D", "8"]) == 2
    assert (
        "a resumed run keeps its D (D 4 -> 8): start a new run for that. Resume can change lr, epochs"
        in capsys.readouterr().err
    )


def test_a_diverged_run_resumes_with_a_lower_learning_rate_as_its_message_says(tmp_path, monkeypatch):
    import lab.train

    real_loss, calls = lab.train.loss_fn, []

    def diverging(model, cfg, *a):  # NaN from the 4th step on while the learning rate is high
        calls.append(1)
        return torch.tensor(float("nan")) if cfg.lr > 1e-2 and len(calls) >= 4 else real_loss(model, cfg, *a)

    monkeypatch.setattr(lab.train, "loss_fn", diverging)
    config = course_config(
        "flow", "time", D=4, batch_size=500, max_steps=6, lr=1.0, checkpoint_every_s=0
    )  # checkpoint each step
    with pytest.raises(
        TrainingDiverged, match=r"and resume: it goes on from its last checkpoint \(step 3\) with the new settings"
    ):
        list(train(config, tmp_path / "run"))
    events = list(train(None, tmp_path / "run", resume=True, changes={"lr": 1e-3}))
    assert [e["step"] for e in events if e["kind"] == "step"] == [4, 5, 6] and events[-1]["kind"] == "done"

    calls.clear()
    calls.extend([1, 1, 1])  # diverges at once: no checkpoint to go on from
    with pytest.raises(TrainingDiverged, match=r"and resume: it goes on from the start \(no checkpoint yet\)"):
        list(train(config, tmp_path / "early"))
    assert cli(["train", "--out", str(tmp_path / "early"), "--resume", "--lr", "1e-3"]) == 0  # starts again, lower lr
    history = [json.loads(line) for line in (tmp_path / "early" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5, 6] and history[0]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--device", "banana"], "device must be cpu, cuda or cuda:N, got 'banana'"),
        (["train", "--max-steps", "0"], r"max_steps must be an integer in \[1, 1000000\], got 0"),
        (["train", "--max-steps", "-5"], r"max_steps must be an integer in \[1, 1000000\], got -5"),
        (["train", "--experiment", "denoiser", "--sigma", "-3"], "sigma must be"),
        (["train", "--grad-clip", "-1"], "grad_clip .*must be"),
        (["sample", "--per-class", "-2"], "--per-class must be at least 1, got -2"),
        (["sample", "--per-class", "0"], "--per-class must be at least 1, got 0"),
        (["sample", "--steps", "0"], "--steps must be at least 1, got 0"),
    ],
)
def test_bad_command_lines_get_a_message_not_a_traceback_nor_a_silent_default(tmp_path, capsys, args, message):
    extra = (
        ["--out", str(tmp_path / "run")]
        if args[0] == "train"
        else ["--checkpoint", "models/weights/flow_class.safetensors", "--out", str(tmp_path / "s.npz")]
    )
    assert cli(args + extra) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "s.npz").exists()


def test_cuda_on_a_cpu_build_and_an_out_that_is_a_file_get_messages(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli(["train", "--device", "cuda", "--out", str(tmp_path / "run")]) == 2
    assert "device 'cuda': " in capsys.readouterr().err
    (tmp_path / "taken").write_text("a file")
    assert cli(["train", "--out", str(tmp_path / "taken")]) == 2
    assert "is a file: give a folder for the run" in capsys.readouterr().err


def test_damaged_state_files_and_nan_weights_are_refused_with_the_file_and_the_field(tmp_path):
    config = course_config("flow", "time", D=4, batch_size=500, max_steps=2)
    list(train(config, tmp_path / "run"))
    folder = latest_checkpoint(tmp_path / "run")
    state = json.loads((folder / "state.json").read_text())
    for damaged, field in (
        (state | {"step": "two"}, "'step' must be a int"),
        ({k: v for k, v in state.items() if k != "epoch"}, "has no 'epoch'"),
        (state | {"unet": state["unet"] | {"wings": 2}}, "'unet' is not a course UNet config"),
        (
            state | {"train": state["train"] | {"wings": 2}},
            "'train' is not a training config .*unknown training setting 'wings'",
        ),
    ):
        (folder / "state.json").write_text(json.dumps(damaged))
        with pytest.raises(CheckpointError, match=f"state.json.*{field}"):
            list(train(None, tmp_path / "run", resume=True))
    (folder / "state.json").write_text(json.dumps(state))
    weights = load_file(folder / "model.safetensors")
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="holds NaN or infinite weights"):
        load_trained(tmp_path / "run")


def test_a_sample_grid_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """The Train live page reads a run's grids while the run writes them: a half-written PNG raised
    UnidentifiedImageError on the page. A write that fails halfway leaves the path as it was and nothing beside it."""
    import numpy as np
    from PIL import Image

    from lab.images import save_png

    path = save_png(np.zeros((4, 4), np.uint8), tmp_path / "samples" / "epoch_001.png")
    before = path.read_bytes()

    def broken(self, fp, *a, **k):
        open(fp, "wb").write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(OSError):
        save_png(np.full((4, 4), 255, np.uint8), path)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["epoch_001.png"]
