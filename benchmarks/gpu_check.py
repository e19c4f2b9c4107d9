"""`make gpu-check`: is this GPU machine ready for the benchmark, and how fast is it? One training
epoch of each GPU-bound piece, timed per step, with the share of each step spent waiting for data
and the peak memory; no download, sized to stay within ~8 minutes on one recent GPU.

    make gpu-check                 # on a CUDA GPU: benchmarks/gpu-check.json
    make gpu-check DRY_RUN=1       # anywhere: the same code on the CPU at tiny sizes (well under a minute)

    CLUSTERBENCH_MIRROR=/path/to/datasets .venv/bin/python benchmarks/gpu_check.py [--dry-run] [--only cc,knn] [--out F]

The checks (``CHECKS``), each through the method's own Config and step code:

- ``cc``: a Contrastive Clustering epoch (methods/cc.py: ResNet-34, batch 256, images resized to
  224 x 224, bfloat16 autocast on the GPU) over 50,000 generated CIFAR-shaped images (random 32 x 32
  RGB uint8, 10 classes, made in memory). Data wait: the batch's copy to the device and its two
  augmentations (CC augments on the GPU), everything before the forward pass.
- ``constellationnet``: a sampled GCN epoch (methods/constellationnet/unsupervised.py defaults: 64
  seeds, 30 + 30 sampled neighbours, DMoN losses) on mnist-sample10k's kNN graph (K = params.yaml
  model.k), read from a mirror (``CLUSTERBENCH_MIRROR``). Data wait: sampling the subgraph on the
  CPU and moving it to the device.
- ``lnscc``: one LNSCC epoch (methods/lnscc/ fit_predict, epochs 1) on the same rows and graph.
  Data wait: the epoch's pair tables (a fresh E^dis, the shuffled per-set tables) built on the host
  and moved to the device; steps then slice them on the device.
- ``knn``: exact faiss kNN (clusterbench.graphs.knn, the knn stage's code) of 70,000 x 784 generated
  points on the GPU (on the CPU when faiss has no GPU support: ``make setup`` installs faiss-gpu where
  nvidia-smi lists a GPU). Steps: query batches. Data wait: building the index and copying the
  points into it (timed by a separate add of the same points).
- ``hilander``: a Hi-LANDER epoch (methods/hilander/ defaults) on the synthetic faces of the
  ``openset-faces-synth`` data set (clusterbench.datasets.synthetic, generated). Data wait: drawing
  each step's node batch and copying it to the device (the level graphs are on the device).

Per check: steps, seconds per step (mean after the first step, which pays for cuDNN / kernel
set-up and is reported apart; epoch time / steps where the step loop is not ours), the data-wait
share, the peak memory (torch.cuda.max_memory_allocated; faiss allocates outside torch, so the kNN
check samples the device's memory in use instead; with --dry-run on the CPU: the process's peak
resident memory, VmHWM, reset before each check) and the sizes used. A GPU run writes
benchmarks/gpu-check.json, a dry run benchmarks/gpu-check-dry.json (or --out), atomically.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clusterbench import threads  # noqa: E402,F401  (first: pins BLAS/OpenMP threads as the stages do)

import argparse  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from contextlib import contextmanager, nullcontext  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from clusterbench import graphs, io  # noqa: E402

CHECKS = ("cc", "constellationnet", "lnscc", "knn", "hilander")
GPU_OUT = ROOT / "benchmarks" / "gpu-check.json"
DRY_OUT = ROOT / "benchmarks" / "gpu-check-dry.json"
KNN_QUERY_BATCH = 16384  # graphs.knn's default: one search call per this many queries

# What each check runs on a GPU, and on the CPU with --dry-run (tiny, same code paths).
SIZES = {
    "gpu": {
        "cc": {"images": 50_000, "classes": 10, "config": {}},  # cc.Config defaults: resnet34, 224 px, batch 256
        "graph": {"dataset": "mnist-sample10k"},
        "constellationnet": {"config": {}},
        "lnscc": {"config": {}},
        "knn": {"rows": 70_000, "dim": 784},
        "hilander": {"faces": {"n_train_ids": 1000, "n_test_ids": 1000, "dim": 64, "seed": 0}, "config": {}},
    },
    "dry": {
        "cc": {"images": 64, "classes": 10, "config": {"backbone": "cnn", "image_size": 32, "batch_size": 16}},
        "graph": {"dataset": "generated", "rows": 400, "dim": 32, "classes": 10, "k": 10},
        "constellationnet": {"config": {"num_neighbors": [5, 5]}},
        "lnscc": {"config": {"encoder_dims": [64], "embedding_dim": 8, "batch_size": 64, "steps_per_epoch": 20,
                             "snapshot_rows": 100}},
        "knn": {"rows": 2_000, "dim": 784, "k": 10},
        "hilander": {"faces": {"n_train_ids": 30, "n_test_ids": 10, "dim": 16, "max_size": 20, "seed": 0},
                     "config": {"train_knn_k": [4, 3], "train_levels": [2, 2], "hidden": 16, "batch_size": 64}},
    },
}


class CheckError(Exception):
    """A setting or input this check cannot run with (one line, printed as error: ...)."""


# --- timing and memory -----------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so a wall-clock reading includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StepTimes:
    """Wall time of each step and the part of it spent waiting for data."""

    total: list[float] = field(default_factory=list)
    data: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        """Steady-state figures: the first step (cuDNN autotuning, lazy initialisation) is reported
        apart and left out of the mean and the share, when there is more than one."""
        if not self.total:
            raise CheckError("no step ran: the epoch was empty")
        steady = slice(1, None) if len(self.total) > 1 else slice(None)
        total, waited = sum(self.total[steady]), sum(self.data[steady])
        return {"steps": len(self.total), "seconds_per_step": total / len(self.total[steady]),
                "first_step_s": self.total[0], "epoch_s": sum(self.total),
                "data_wait_share": waited / total if total > 0 else 0.0,
                "step_time_basis": "mean of the steps after the first" if len(self.total) > 1 else "the one step"}


def epoch_summary(steps: int, epoch_s: float, data_s: float, basis: str) -> dict:
    """The same figures where only the epoch's totals are known (the step loop is the method's own)."""
    if steps < 1 or epoch_s <= 0:
        raise CheckError(f"the epoch ran {steps} steps in {epoch_s} s: nothing to time")
    return {"steps": steps, "seconds_per_step": epoch_s / steps, "first_step_s": None, "epoch_s": epoch_s,
            "data_wait_share": min(max(data_s / epoch_s, 0.0), 1.0), "step_time_basis": basis}


def vm_hwm_mb() -> float | None:
    """The process's peak resident memory (VmHWM), None where /proc/self/status has none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_vm_hwm() -> bool:
    """Reset VmHWM to the current resident size (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory of one check: the CUDA caching allocator's peak on a GPU, else the process's
    peak resident memory (per check where Linux lets VmHWM be reset, else since the start)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mb: float | None = None
        self.source = ""

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.source = "torch.cuda.max_memory_allocated"
        elif reset_vm_hwm():
            self.source = "CPU: peak resident memory of the process during this check (VmHWM, reset before it)"
        else:
            self.source = "CPU: peak resident memory of the process since it started (ru_maxrss; not resettable here)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            hwm = vm_hwm_mb() if "VmHWM" in self.source else None
            self.mb = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class DeviceUseSampler:
    """Peak of the device's memory in use (cudaMemGetInfo, every ``interval`` s) above what was in
    use at the start: for faiss, whose GPU allocations torch's allocator does not see."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _used(self) -> int:
        free, total = torch.cuda.mem_get_info()
        return total - free

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._used() - self.base)
            time.sleep(self.interval)

    def __enter__(self) -> "DeviceUseSampler":
        self.base = self._used()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._used() - self.base)


@dataclass
class Call:
    name: str
    start: float
    end: float


@contextmanager
def recording_calls(module, names: tuple[str, ...], device: torch.device, synced: bool = True):
    """Record when the module-level functions ``names`` of ``module`` run (outermost calls only:
    one recorded function calling another is one call); ``synced``: wait for the device before and
    after each (not for per-step functions whose point is to never wait); the originals are put
    back on exit."""
    calls: list[Call] = []
    depth = [0]
    originals = {name: getattr(module, name) for name in names if hasattr(module, name)}

    def wrap(name, fn):
        def recorded(*args, **kwargs):
            if depth[0]:
                return fn(*args, **kwargs)
            if synced:
                sync(device)
            depth[0] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if synced:
                    sync(device)
                calls.append(Call(name, start, time.perf_counter()))
                depth[0] -= 1
        return recorded

    for name, fn in originals.items():
        setattr(module, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


# --- inputs ----------------------------------------------------------------------------------------

def model_k() -> int:
    """params.yaml model.k: the K of every kNN graph the pipeline builds."""
    import yaml

    return int(yaml.safe_load((ROOT / "params.yaml").read_text())["model"]["k"])


def generated_blobs(rows: int, dim: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` Gaussian blobs in [0, 1]-scaled coordinates: a small graph for the dry run."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    centres = rng.uniform(0.0, 1.0, (classes, dim))
    x = centres[y] + 0.08 * rng.standard_normal((rows, dim))
    return x.astype(np.float32), y.astype(np.int64)


@dataclass
class GraphInput:
    x: np.ndarray
    y: np.ndarray
    graph: object  # graphs.KnnGraph
    sizes: dict
    setup_s: float


def load_graph_input(spec: dict, use_gpu: bool) -> GraphInput:
    """mnist-sample10k from a mirror (the raw view: 784 pixels scaled to [0, 1]) and its exact kNN
    graph, as ConstellationNet and LNSCC train on; or generated blobs (dry run)."""
    from clusterbench import datasets

    start = time.perf_counter()
    if spec["dataset"] == "generated":
        x, y = generated_blobs(spec["rows"], spec["dim"], spec["classes"])
        k = spec["k"]
    else:
        k = model_k()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                arrays = datasets.prepare(spec["dataset"], Path(tmp) / spec["dataset"],
                                          datasets.Fetcher(offline=True, progress=False, cache_dir=Path(tmp) / "cache"))
            except datasets.DatasetError as exc:
                first = str(exc).split(". ")[0] if str(exc) else type(exc).__name__
                raise CheckError(f"{spec['dataset']} is not in any mirror (the check downloads nothing): set "
                                 f"CLUSTERBENCH_MIRROR to a folder holding {spec['dataset']}/ ({first})") from None
        x = arrays.X.reshape(len(arrays.X), -1).astype(np.float32) / 255.0
        y = np.asarray(arrays.y, dtype=np.int64)
    graph = graphs.knn(x, k, use_gpu=use_gpu)
    sizes = {"dataset": spec["dataset"], "rows": int(len(x)), "dim": int(x.shape[1]), "k": int(k),
             "classes": int(len(np.unique(y)))}
    return GraphInput(x, y, graph, sizes, time.perf_counter() - start)


def context(x: np.ndarray, y: np.ndarray, graph, n_clusters: int, device: torch.device, log=None,
            image_shape: tuple[int, ...] = ()):
    """A RunContext as the train stage builds one, without a run folder (no checkpoints, no artefacts)."""
    from clusterbench.embeddings import View
    from clusterbench.methods import RunContext

    view = View(x, y, np.zeros(len(x), np.uint8), np.arange(len(x), dtype=np.int64), image_shape)
    return RunContext(view, graph, seed=0, n_clusters=n_clusters, device=str(device), progress=False,
                      **({"log": log} if log is not None else {}))


# --- the checks ------------------------------------------------------------------------------------

def check_cc(spec: dict, device: torch.device, inputs) -> dict:
    from clusterbench.methods import cc

    rng = np.random.default_rng(0)
    n = spec["images"]
    pixels = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)  # CIFAR's shape, random content
    labels = rng.integers(0, spec["classes"], n).astype(np.int64)
    ctx = context(pixels.reshape(n, -1).astype(np.float32) / 255.0, labels, None, spec["classes"], device,
                  image_shape=(32, 32, 3))
    del pixels
    config = cc.Config(epochs=1, checkpoint_every=0, keep_checkpoints=[], **spec["config"])
    images = cc.view_images(ctx)
    model = cc.CCNetwork(config.backbone, config.feature_dim, ctx.n_clusters).to(device)
    trainer = cc.make_trainer(config, ctx, model, cc.cc_loss(config), images.shape[-1], "cc", fingerprint={})
    times, starts = StepTimes(), []
    make_views = trainer._views

    def timed_views(batch):  # a step starts here: its batch was just gathered on the host
        sync(device)
        starts.append(time.perf_counter())
        views = make_views(batch)
        sync(device)
        times.data.append(time.perf_counter() - starts[-1])
        return views

    trainer._views = timed_views
    trainer.fit(images)
    sync(device)
    ends = starts[1:] + [time.perf_counter()]
    times.total = [end - start for start, end in zip(starts, ends)]
    return {**times.summary(), "data_wait_is": "the batch's copy to the device and its two augmentations "
            f"(augment_on: {config.augment_on})",
            "sizes": {"images": n, "source": "generated CIFAR-shaped 32 x 32 x 3 uint8", "classes": spec["classes"],
                      "image_size": config.image_size, "batch_size": config.batch_size, "backbone": config.backbone,
                      "mixed_precision": config.mixed_precision}}


def check_constellationnet(spec: dict, device: torch.device, inputs) -> dict:
    from clusterbench.methods.constellationnet import unsupervised as cn
    from clusterbench.methods.constellationnet.common import subgraph_tensors
    from clusterbench.methods.constellationnet.sampling import InNeighbours, sample_subgraph, seed_batches

    data = inputs.graph_input()
    config = cn.Config(conv="gcn", epochs=1, **spec["config"])
    graph = InNeighbours.from_knn(data.graph)
    n_clusters = data.sizes["classes"]
    model = cn.build_model(config, data.x.shape[1], n_clusters).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    x = torch.from_numpy(data.x).to(device)
    rng = np.random.default_rng(0)
    times, nodes = StepTimes(), []
    model.train()
    for seeds in seed_batches(np.arange(graph.n), config.batch_size, rng):  # the method's epoch, step by step
        sync(device)
        start = time.perf_counter()
        sub = sample_subgraph(graph, seeds, config.num_neighbors, rng)
        edge_index, edge_weight = subgraph_tensors(sub, device)
        xb = x[torch.from_numpy(sub.nodes).to(device)]
        sync(device)
        ready = time.perf_counter()
        loss, _ = cn.batch_loss(model, xb, edge_index, edge_weight, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync(device)
        times.total.append(time.perf_counter() - start)
        times.data.append(ready - start)
        nodes.append(sub.num_nodes)
    return {**times.summary(), "data_wait_is": "sampling the subgraph on the CPU and moving it to the device",
            "sizes": {**data.sizes, "conv": config.conv, "hidden": cn.hidden_size(config, data.x.shape[1]),
                      "num_layers": config.num_layers, "batch_size": config.batch_size,
                      "num_neighbors": list(config.num_neighbors), "mean_subgraph_nodes": float(np.mean(nodes))}}


def check_lnscc(spec: dict, device: torch.device, inputs) -> dict:
    from clusterbench.methods import lnscc

    data = inputs.graph_input()
    config = lnscc.Config(epochs=1, progress_snapshots=False, **spec["config"])
    rows: list[dict] = []
    ctx = context(data.x, data.y, data.graph, data.sizes["classes"], device, log=rows.append)
    tables, steps = ("per_set_tables", "epoch_pairs", "sample_disconnected"), ("batch_loss_fast", "batch_loss")
    with recording_calls(lnscc.training, tables, device) as calls, \
            recording_calls(lnscc.training, steps, device, synced=False) as step_calls:
        lnscc.fit_predict(ctx, config)
    if not rows:
        raise CheckError("lnscc logged no epoch")
    row = rows[0]
    first_step = min((c.start for c in step_calls), default=None)
    before = [c for c in calls if c.name in tables[:2] and first_step is not None and c.start < first_step]
    # The epoch's own preparation: from its pair-table call to its first step (tables to the device).
    prepared = first_step - before[-1].start if before else 0.0
    # Epoch 1 reuses the E^dis drawn before training; every later epoch draws a fresh one.
    redraw = next((c.end - c.start for c in calls if c.name == "sample_disconnected"), 0.0) \
        if config.resample_dis == "epoch" else 0.0
    epoch_s = float(row["wall_s"]) + redraw
    summary = epoch_summary(int(row["steps"]), epoch_s, prepared + redraw,
                            "(epoch time + E^dis redraw) / steps: the step loop is fit_predict's own")
    if not before:
        summary["data_wait_share"] = None
    return {**summary, "data_wait_is": "the epoch's pair tables (a fresh E^dis and the shuffled pair sets) built on "
            "the host and moved to the device",
            "sizes": {**data.sizes, "n_neighbors": config.n_neighbors, "encoder_dims": list(config.encoder_dims),
                      "embedding_dim": config.embedding_dim, "batch_size": config.batch_size,
                      "batching": config.batching, "step_impl": config.step_impl,
                      "encoder_dtype": lnscc.training.effective_encoder_dtype(config, device.type)}}


def check_knn(spec: dict, device: torch.device, inputs) -> dict:
    use_gpu = device.type == "cuda" and graphs.faiss_gpu_available()
    k = spec.get("k") or model_k()
    x = np.random.default_rng(0).standard_normal((spec["rows"], spec["dim"]), dtype=np.float32)
    graphs.knn(x[:min(len(x), 4096)], k, use_gpu=use_gpu, batch_size=KNN_QUERY_BATCH)  # warm-up: GPU resources
    host_measured = device.type == "cuda" and not use_gpu and reset_vm_hwm()  # faiss-cpu on a GPU machine
    with DeviceUseSampler() if use_gpu else nullcontext() as sampler:
        start = time.perf_counter()
        graphs.knn(x, k, use_gpu=use_gpu, batch_size=KNN_QUERY_BATCH)
        knn_s = time.perf_counter() - start
    host_peak = vm_hwm_mb() if host_measured else None
    start = time.perf_counter()  # what knn does before its first search: the index and the points' copy
    index = faiss.IndexFlatL2(x.shape[1])
    if use_gpu:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(x)
    upload_s = time.perf_counter() - start
    del index
    steps = math.ceil(len(x) / KNN_QUERY_BATCH)
    result = {**epoch_summary(steps, knn_s, min(upload_s, knn_s), "one knn call / its query batches"),
              "data_wait_is": "building the index and copying the points into it (a separate add of the same points)",
              "faiss_gpu": use_gpu,
              "sizes": {"rows": len(x), "dim": int(x.shape[1]), "k": int(k), "query_batch": KNN_QUERY_BATCH,
                        "source": "generated standard normal float32", "index": "IndexFlatL2 (exact)",
                        "faiss": faiss.__version__}}
    if sampler:
        result["peak_memory_mb"] = sampler.peak / 2**20
        result["peak_memory_source"] = "device memory in use above the start (cudaMemGetInfo every 5 ms): faiss " \
                                       "allocates outside torch"
    if device.type == "cuda" and not use_gpu:
        result["note"] = ("faiss has no GPU support here (faiss-cpu installed): timed on the CPU; `make setup` "
                          "installs faiss-gpu where nvidia-smi lists a GPU")
        if host_peak is not None:
            result["peak_memory_mb"] = host_peak
            result["peak_memory_source"] = "CPU: peak resident memory of the process during the knn call (VmHWM)"
    return result


def check_hilander(spec: dict, device: torch.device, inputs) -> dict:
    from clusterbench.datasets.synthetic import openset_faces
    from clusterbench.methods import hilander as H

    faces = openset_faces(**spec["faces"])
    train_rows, test_rows = H.training.open_set_rows(faces.split)
    config = H.Config(epochs=1, **spec["config"])
    start = time.perf_counter()
    feats = H.hierarchy.l2norm(faces.X[train_rows])
    y = faces.y[train_rows]
    levels = [g for k, lv in zip(config.train_knn_k, config.train_levels) for g in H.hierarchy.ground_truth_levels(feats, y, k, lv)]
    model = H.model.Model(feats.shape[1], config, str(device))
    model.train()
    tensors = [model.tensors(g) for g in levels]
    targets = [(torch.as_tensor(g.density, device=device), torch.as_tensor(g.linkage, device=device)) for g in levels]
    setup_s = time.perf_counter() - start
    # H.training.train's epoch, step by step: batches of the first graph's size, each graph in turn (its cosine
    # learning-rate schedule is left out: it changes no step's cost)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    per_loader = math.ceil(levels[0].n / config.batch_size)
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    queues: list[list] = [[] for _ in levels]
    times = StepTimes()
    for _ in range(per_loader):
        for i in range(len(levels)):
            sync(device)
            start = time.perf_counter()
            if not queues[i]:
                queues[i] = list(torch.randperm(levels[i].n, generator=generator).split(config.batch_size))
            nodes = queues[i].pop(0).to(device)
            sync(device)
            ready = time.perf_counter()
            opt.zero_grad()
            loss, _, _ = H.training._loss(model, tensors[i], targets[i], nodes, rng)
            loss.backward()
            opt.step()
            loss.item()
            times.total.append(time.perf_counter() - start)
            times.data.append(ready - start)
    return {**times.summary(), "data_wait_is": "drawing the step's node batch and copying it to the device (the level "
            "graphs are on the device from the start)", "setup_s": setup_s,
            "sizes": {"train_rows": int(len(train_rows)), "test_rows": int(len(test_rows)),
                      "identities": faces.info["identities"], "dim": int(faces.X.shape[1]),
                      "train_graph_nodes": [int(g.n) for g in levels], "hidden": config.hidden,
                      "batch_size": config.batch_size, "train_knn_k": list(config.train_knn_k),
                      "train_levels": list(config.train_levels), "source": "openset_faces (generated)"}}


RUNNERS = {"cc": check_cc, "constellationnet": check_constellationnet, "lnscc": check_lnscc, "knn": check_knn,
           "hilander": check_hilander}


class Inputs:
    """Inputs several checks share, made once on first use (mnist-sample10k and its kNN graph)."""

    def __init__(self, sizes: dict, device: torch.device):
        self.sizes, self.device, self._graph = sizes, device, None

    def graph_input(self) -> GraphInput:
        if self._graph is None:
            use_gpu = self.device.type == "cuda" and graphs.faiss_gpu_available()
            self._graph = load_graph_input(self.sizes["graph"], use_gpu)
        return self._graph


# --- the run ---------------------------------------------------------------------------------------

def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
    except OSError:
        models = []
    return f"CPU: {models[0] if models else platform.processor() or platform.machine()}"


def rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}") if abs(value) < 1e4 else round(value, 1)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def progress_line(i: int, n: int, name: str, result: dict) -> str:
    if "error" in result:
        return f"gpu-check [{i}/{n}] {name}: FAILED: {result['error']}"
    share = result["data_wait_share"]
    memory = "RSS" if result["peak_memory_source"].startswith("CPU") else "GPU"
    return (f"gpu-check [{i}/{n}] {name}: {result['steps']} steps, {result['seconds_per_step']:.4g} s/step, "
            f"data wait {'n/a' if share is None else f'{100 * share:.1f} %'}, peak {result['peak_memory_mb']:,.0f} MB "
            f"{memory}, {result['wall_s']:.1f} s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="the same checks on the CPU at tiny sizes")
    ap.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated subset of {', '.join(CHECKS)}")
    ap.add_argument("--out", default=None, help=f"result file (default {GPU_OUT.relative_to(ROOT)}; with --dry-run "
                    f"{DRY_OUT.relative_to(ROOT)})")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in CHECKS]
    if unknown or not only:
        print(f"error: --only {args.only!r}: unknown check(s) {', '.join(unknown) or '(none given)'}; choose from "
              f"{', '.join(CHECKS)}", file=sys.stderr)
        return 2
    if not args.dry_run and not torch.cuda.is_available():
        print("error: gpu-check: no CUDA GPU found (torch.cuda.is_available() is false); run `make gpu-check "
              "DRY_RUN=1` for the same checks on the CPU at tiny sizes", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else (DRY_OUT if args.dry_run else GPU_OUT)
    device = torch.device("cpu" if args.dry_run else "cuda")
    sizes = SIZES["dry" if args.dry_run else "gpu"]
    inputs = Inputs(sizes, device)
    started, begin = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    report = {"dry_run": args.dry_run, "device": device.type, "device_name": device_name(device),
              "torch": torch.__version__, "torch_cuda": torch.version.cuda, "host": platform.node(),
              "cpu_threads": torch.get_num_threads(), "started": started.isoformat(timespec="seconds"), "checks": {}}
    report.update({"faiss": faiss.__version__, "faiss_gpu": graphs.faiss_gpu_available()})
    print(f"gpu-check: {report['device_name']}, torch {torch.__version__}, faiss {faiss.__version__}"
          f"{' with' if report['faiss_gpu'] else ' without'} GPU support"
          f"{' (dry run: CPU, tiny sizes)' if args.dry_run else ''}", flush=True)
    if {"constellationnet", "lnscc"} & set(only):  # first, so a missing mirror stops the run at once
        try:
            shared = inputs.graph_input()
        except CheckError as exc:
            print(f"error: gpu-check: {exc}", file=sys.stderr)
            return 2
        report["graph"] = rounded({**shared.sizes, "setup_s": shared.setup_s})
        print(f"gpu-check: {shared.sizes['dataset']}: {shared.sizes['rows']:,} x {shared.sizes['dim']}, kNN graph "
              f"k = {shared.sizes['k']} in {shared.setup_s:.1f} s (ConstellationNet, LNSCC)", flush=True)
    failed = 0
    for i, name in enumerate(only, 1):
        print(f"gpu-check [{i}/{len(only)}] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            torch.manual_seed(0)
            with PeakMemory(device) as peak:
                result = RUNNERS[name](sizes[name], device, inputs)
            result.setdefault("peak_memory_mb", peak.mb)
            result.setdefault("peak_memory_source", peak.source)
        except CheckError as exc:
            print(f"error: gpu-check {name}: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # one check failing (out of memory, a missing wheel) must not hide the others
            traceback.print_exc()  # device time is scarce: what failed where, without a rerun
            result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            failed += 1
        result["wall_s"] = time.perf_counter() - start
        report["checks"][name] = rounded(result)
        print(progress_line(i, len(only), name, result), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report["total_s"] = round(time.perf_counter() - begin, 1)
    io.write_json(out, report)  # a temporary beside it, renamed into place (os.replace)
    print(f"gpu-check: {len(only) - failed}/{len(only)} checks in {report['total_s']:.0f} s -> {out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
