"""The server's fast path (serving/batching.py, CourseDenoiser.for_inference): loops of several requests share model
calls, a row's output does not depend on what it is batched with, and samples made the fast way are judged as
well as the exact way's."""

import threading
from pathlib import Path

import pytest
import torch

import lab
from lab.metrics import accuracy, predict
from models.bundled import load_backend, load_classifier
from serving.batching import LoopBatcher


@pytest.fixture(scope="module")
def backends():
    exact = load_backend("MNIST digits")
    return exact, exact.for_inference()


def test_the_fast_model_equals_the_exact_one_up_to_float_rounding(backends):
    exact, fast = backends
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 28, 28, generator=g)
    cond = exact.encode(["3", "", "7", "a high quality photo", "0", "1", "2", "9"])
    eps_exact, _ = exact(x, 500, cond)
    eps_fast, _ = fast(x, 500, cond)
    assert (eps_fast - eps_exact).abs().max() < 1e-4
    per_row, _ = fast(x, torch.tensor([500] * 8), cond)  # one timestep per row, as the batcher calls it
    assert torch.equal(per_row, eps_fast)


def test_a_rows_output_does_not_depend_on_its_batch_when_batches_are_multiples_of_the_quantum(backends):
    """What makes identical requests give identical pictures whatever else the room asks (on this machine's kernels)."""
    _, fast = backends
    g = torch.Generator().manual_seed(1)
    x = torch.randn(24, 1, 28, 28, generator=g)
    t = torch.randint(0, 1000, (24,), generator=g)
    cond = torch.nn.functional.one_hot(torch.randint(0, 10, (24,), generator=g), 10).float()
    alone = torch.cat(
        [
            fast(
                torch.cat([x[i : i + 1], torch.zeros(3, 1, 28, 28)]),
                torch.cat([t[i : i + 1], t[:3]]),
                torch.cat([cond[i : i + 1], cond[:3]]),
            )[0][:1]
            for i in range(24)
        ]
    )
    for size in (4, 8, 12, 24):
        perm = torch.randperm(24, generator=g)
        out = torch.cat(
            [
                fast(x[perm][k : k + size], t[perm][k : k + size], cond[perm][k : k + size])[0]
                for k in range(0, 24, size)
            ]
        )
        assert torch.equal(out, alone[perm]), size


def sdedit_steps(den, seed: int, i_start: int, image: torch.Tensor, record: list | None = None):
    return lab.sdedit.steps(
        den, image, i_start, "3", 7.0, generator=seed, callback=record.append if record is not None else None
    )


def test_loops_running_together_share_model_calls_and_each_gets_what_it_gets_alone(backends):
    _, fast = backends
    image = torch.zeros(1, 1, 28, 28)
    alone = [LoopBatcher(fast).run(sdedit_steps(fast, 10 + i, i, image)) for i in (1, 5, 20)]
    batcher, results = LoopBatcher(fast), [None] * 3
    go = threading.Barrier(3)

    def one(k, i):
        steps = sdedit_steps(fast, 10 + i, i, image)
        go.wait()
        results[k] = batcher.run(steps)

    threads = [threading.Thread(target=one, args=(k, i)) for k, i in enumerate((1, 5, 20))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(torch.equal(r, a) for r, a in zip(results, alone))
    steps = (34 - 1) + (34 - 5) + (34 - 20)
    assert (
        batcher.stats["steps"] == steps and batcher.stats["model_calls"] < steps
    )  # chains at different t shared calls
    assert batcher.stats["most_loops"] >= 2


def test_a_loop_that_fails_fails_alone(backends):
    _, fast = backends
    batcher = LoopBatcher(fast)

    def broken():
        yield torch.zeros(1, 1, 28, 28), 500, fast.encode(["3"])
        raise ValueError("this step went wrong")

    with pytest.raises(ValueError, match="this step went wrong"):
        batcher.run(broken())
    image = torch.zeros(1, 1, 28, 28)
    assert torch.equal(
        batcher.run(sdedit_steps(fast, 3, 10, image)), LoopBatcher(fast).run(sdedit_steps(fast, 3, 10, image))
    )


def test_samples_made_the_fast_way_are_judged_as_well_as_the_exact_ways(backends):
    """As tests/test_bundled.py judges the bundled backend: one image per class, CFG 7, read by the bundled classifier."""
    exact, fast = backends
    judge = load_classifier("mnist")
    labels = torch.arange(10).repeat(3)
    scores = {}
    for name, den in (("exact", exact), ("fast", fast)):
        images = []
        for seed in range(3):
            x = lab.course.pure_noise(den, 10, torch.Generator().manual_seed(seed))
            guide = lab.cfg(den.encode([str(k) for k in range(10)]), den.encode([""]), 7.0)
            steps = lab.denoise_steps(
                den, x, lab.strided_timesteps(), guide, generator=torch.Generator().manual_seed(seed), clip_x0=1.0
            )
            images.append(lab.run_steps(steps, den) if name == "exact" else LoopBatcher(den).run(steps))
        predicted, _ = predict(judge, (torch.cat(images) + 1) / 2)
        scores[name] = accuracy(predicted, labels)
    assert scores["fast"] >= 0.9 and scores["fast"] >= scores["exact"] - 0.05, scores


def test_settings_are_checked(backends):
    with pytest.raises(ValueError, match="multiple of quantum"):
        LoopBatcher(backends[1], max_rows=10, quantum=4)


class RecordingDenoiser:
    """A stand-in model that records which loops' rows each call holds (each loop's condition is its tag)."""

    row_timesteps, device = False, torch.device("cpu")

    def __init__(self):
        self.calls: list[set[int]] = []

    def __call__(self, x, t, cond):
        self.calls.append({int(c) for c in cond[:, 0].tolist() if c > 0})  # padding rows repeat the last condition
        threading.Event().wait(0.005)  # a model call takes time: other loops arrive meanwhile
        return x + 1, None


def tagged_steps(tag: int, n: int):
    x = torch.zeros(1, 1, 2, 2)
    for _ in range(n):
        x, _ = yield x, 0.5, torch.tensor([[float(tag)]])
    return x


def test_a_warm_up_loop_waits_while_a_loop_somebody_waits_for_runs_and_runs_with_them_once_joined():
    """A browser that arrives during the room's warm-up is served first: the warm-up's loop (nobody waits for it) has no
    row in the model calls while a wanted loop runs; once a browser joins it, it runs with the wanted loops again; it
    ends with the result it has alone."""
    den = RecordingDenoiser()
    batcher, results, joined = LoopBatcher(den, max_rows=8, quantum=4), {}, threading.Event()
    warm = threading.Thread(
        target=lambda: results.__setitem__("warm", batcher.run(tagged_steps(1, 200), joined.is_set))
    )
    warm.start()
    while len(den.calls) < 5:  # the warm-up is under way
        threading.Event().wait(0.001)
    results["first"] = batcher.run(tagged_steps(2, 20))
    served = [i for i, call in enumerate(den.calls) if 2 in call]
    assert len(served) == 20 and served == list(range(served[0], served[0] + 20))  # a step each call, none skipped
    assert all(1 not in den.calls[i] for i in served)  # the warm-up waited meanwhile
    joined.set()  # a browser opens the page whose warm-up is running: it is wanted now
    results["second"] = batcher.run(tagged_steps(3, 10))
    assert all(1 in call for call in den.calls if 3 in call)  # computed together again
    warm.join(timeout=60)
    assert [results[k][0, 0, 0, 0].item() for k in ("warm", "first", "second")] == [200, 20, 10]
    assert sum(1 in call for call in den.calls) == 200


def test_a_warm_up_on_another_backend_waits_too_while_a_browser_is_served():
    """Two backends on one device (the other edition's warm-up beside the room's backend): the warm-up's batcher makes
    no model call while the other batcher runs a loop somebody waits for."""
    warm_den, room_den = RecordingDenoiser(), RecordingDenoiser()
    warm_batcher, room_batcher = (
        LoopBatcher(warm_den, max_rows=8, quantum=4),
        LoopBatcher(room_den, max_rows=8, quantum=4),
    )
    results = {}
    warm = threading.Thread(
        target=lambda: results.__setitem__("warm", warm_batcher.run(tagged_steps(1, 400), lambda: False))
    )
    warm.start()
    while len(warm_den.calls) < 3:
        threading.Event().wait(0.001)
    before = len(warm_den.calls)
    results["room"] = room_batcher.run(tagged_steps(2, 30))
    during = len(warm_den.calls) - before
    assert during <= 2, during  # at most the round under way when the browser came, and one racing it
    warm.join(timeout=60)
    assert results["warm"][0, 0, 0, 0].item() == 400 and results["room"][0, 0, 0, 0].item() == 30


@pytest.mark.parametrize("name", ["Emoji (colour)", "Emoji (colour, flow)"])
def test_the_colour_backends_fast_model_equals_the_exact_one_and_a_row_ignores_its_batch(name):
    """The colour backends' server copy (channels_last): equal to the exact model up to fp32 rounding, and a row's
    output the same whatever it is batched with in multiples of the room's quantum (identical pictures in a room)."""
    exact = load_backend(name)
    fast = exact.for_inference()
    assert fast.unet is not exact.unet and exact.memory_format == torch.contiguous_format  # the exact path kept
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, 32, 32, generator=g)
    t = torch.rand(12, generator=g) if exact.prediction == "velocity" else torch.randint(0, 1000, (12,), generator=g)
    cond = exact.encode(["fire", "", "rocket", "old man"] * 3)
    out_exact, out_fast = exact(x, t, cond)[0], fast(x, t, cond)[0]
    assert (out_fast - out_exact).abs().max() < 1e-4
    alone = torch.cat(
        [
            fast(
                torch.cat([x[i : i + 1], x[:3]]),
                torch.cat([t[i : i + 1], t[:3]]),
                torch.cat([cond[i : i + 1], cond[:3]]),
            )[0][:1]
            for i in range(12)
        ]
    )
    for size in (4, 8, 12):
        out = torch.cat([fast(x[k : k + size], t[k : k + size], cond[k : k + size])[0] for k in range(0, 12, size)])
        assert torch.equal(out, alone), size


def test_a_denoiser_over_a_server_copy_feeds_it_its_own_layout():
    """Part B's generators page samples an inference copy (channels_last) through lab.generate, which wraps it in a
    CourseDenoiser: that one feeds it channels_last, not a contiguous batch oneDNN converts on every call."""
    from models.bundled import load_course_model
    from models.course_backend import CourseDenoiser
    from models.unet import inference_copy, memory_format_of

    model, _ = load_course_model("flow_class")
    fast = inference_copy(model)
    assert memory_format_of(model) == torch.contiguous_format and memory_format_of(fast) == torch.channels_last
    exact, served = CourseDenoiser(model, None), CourseDenoiser(fast, None)
    assert served.memory_format == torch.channels_last
    x, cond = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.zeros(8, 10)
    assert (served(x, 0.5, cond)[0] - exact(x, 0.5, cond)[0]).abs().max() < 1e-4


class ThreadRecordingDenoiser(RecordingDenoiser):
    """A stand-in model that also records the thread of each call and its torch threads there."""

    def __init__(self):
        super().__init__()
        self.threads: list[tuple[str, int]] = []

    def __call__(self, x, t, cond):
        self.threads.append((threading.current_thread().name, torch.get_num_threads()))
        return super().__call__(x, t, cond)


def test_two_backends_models_run_on_one_thread_of_the_device_with_the_models_torch_threads():
    """One OpenMP team in the process: every batcher of a device hands its model calls to the device's one model thread,
    which has the model's torch threads; the batchers' own threads (their loops' step math) keep one. Two teams on two
    cores make OpenMP stop spinning between parallel regions: every model call 1.3-1.5x slower (serving.batching)."""
    dens = [ThreadRecordingDenoiser(), ThreadRecordingDenoiser()]
    batchers = [LoopBatcher(den, max_rows=8, quantum=4, threads=2) for den in dens]
    inside = {}

    def step_threads():  # a loop's own code runs on its batcher's thread
        x = torch.zeros(1, 1, 2, 2)
        x, _ = yield x, 0.5, torch.tensor([[1.0]])
        torch.randn(256, 256).exp()  # a parallel op there (over torch's grain)
        inside["batcher"] = (threading.current_thread().name, torch.get_num_threads())
        return x

    for batcher in batchers:
        batcher.run(step_threads())
    names = {name for den in dens for name, _ in den.threads}
    assert len(names) == 1 and names.pop().startswith("model-cpu"), [den.threads for den in dens]
    assert {n for den in dens for _, n in den.threads} == {2}
    assert inside["batcher"] == ("loop-batcher", 1)
    for batcher in batchers:
        batcher.close()


@pytest.mark.skipif("OpenMP" not in torch.__config__.parallel_info(), reason="torch's native pool: one count a process")
def test_a_queue_worker_keeps_one_torch_thread_after_another_thread_asks_for_more():
    """A room's queue worker computes with one torch thread on the fast path, even when another thread (a batcher)
    named another count after the worker started: torch sets a thread up at its first parallel op with the count named
    last, and a worker that had two kept an OpenMP team of its own (one per worker used: 32 on two cores)."""
    from serving.room import Room
    from serving.settings import RoomSettings

    threads = torch.get_num_threads()
    room = Room(RoomSettings(warm=False, compute_workers=1))
    try:
        # a first job: the worker has started (its set-up has run) and done no parallel op yet
        assert room.queue.submit(("started",), lambda progress: torch.zeros(1)).result().item() == 0
        torch.set_num_threads(2)  # what a batcher's model thread does after the workers started

        def job(progress):
            torch.randn(256, 256).exp()  # the worker's first parallel op
            return torch.tensor(torch.get_num_threads())  # (the room's store sizes a result by its bytes)

        assert room.queue.submit(("threads of a worker",), job).result().item() == 1
    finally:
        room.close()
        torch.set_num_threads(threads)


def test_a_process_exits_while_a_model_call_hangs():
    """The model thread never holds a server's exit up: a model call that never returns (a stuck GPU, say) leaves the
    interpreter free to exit, as the room's own threads do (they are daemons; Room.close stops them at exit)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import threading, torch
        from serving.batching import LoopBatcher

        class Stuck:
            row_timesteps, device = False, torch.device("cpu")
            def __call__(self, x, t, cond):
                threading.Event().wait()  # never returns

        def steps():
            yield torch.zeros(1, 1, 2, 2), 0.5, torch.zeros(1, 1)

        batcher = LoopBatcher(Stuck(), max_rows=4, quantum=4)
        threading.Thread(target=batcher.run, args=(steps(),), daemon=True).start()
        threading.Event().wait(0.5)  # the model call is under way
        print("leaving")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "leaving" in done.stdout, done.stderr[-2000:]
