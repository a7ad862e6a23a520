"""Recording on Ray workers: the same shards and manifest as a local recording, many processes.

Each worker is a Ray actor that loads the model once (one GPU each when the cluster has GPUs)
and records whole shards; the driver hands out the missing shards and is the only writer of
the manifest, so a distributed recording resumes exactly like a local one, locally or on Ray.
On a multi-node cluster, ``out`` must be a filesystem every node sees (NFS, Lustre, ...).
"""

from __future__ import annotations

import os

from ..errors import LaminaError


def _ray():
    try:
        import ray
    except ImportError:
        raise LaminaError("backend='ray' needs Ray: `pip install 'lamina[ray]'` (or `pip install ray`).") from None
    return ray


def model_spec(model) -> dict:
    """How a worker rebuilds ``model``: load arguments, or the model itself for one built in memory."""
    load = model.source.get("load")
    if load is not None:
        return {"load": load}
    # Config + weights rather than the module object: a live module can hold unpicklable state
    # (hooks, context variables); these two rebuild it exactly.
    return {"object": (model.hf.config, {k: v.cpu() for k, v in model.hf.state_dict().items()}, model.tokenizer,
                       model.name, model.prepend_bos, model.bos_token, model.source)}


def build_model(spec: dict, device: str):
    from ..models import load, wrap

    if "load" in spec:
        kwargs = dict(spec["load"])
        if kwargs.get("device_map") is None:
            kwargs["device"] = device
        return load(**kwargs)
    from transformers import AutoModelForCausalLM

    config, state, tokenizer, name, prepend_bos, bos_token, source = spec["object"]
    hf = AutoModelForCausalLM.from_config(config)
    hf.load_state_dict(state)
    return wrap(hf.to(device), tokenizer, name=name, prepend_bos=prepend_bos, bos_token=bos_token, source=source)


def run_shards(model, todo: list[int], record_one, *, workers: int | None, address: str | None, on_done,
               job: dict) -> None:
    """Record shards ``todo`` on Ray actors; ``on_done(entry)`` runs in the driver as each finishes.

    Args:
        record_one: ``record_one(model, k, **job) -> manifest entry`` (picklable, module level).
        workers: number of actors (default: one per GPU, else 2).
        address: a running cluster (``"auto"``, ``"ray://host:10001"``); None starts a local one.
        job: the keyword arguments of ``record_one`` shared by every shard (stimuli, plan, ...).
    """
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local cluster
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 **({} if address else {"num_cpus": max(2, workers or 2)}))
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        workers = workers or (gpus if gpus else 2)
        per_worker_gpu = 1 if gpus >= workers else 0

        @ray.remote(num_gpus=per_worker_gpu, num_cpus=1)
        class Recorder:
            def __init__(self, spec, job):
                import torch

                # One thread per CPU the actor holds (Ray gives it 1 unless told otherwise).
                torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
                self.model = build_model(spec, "cuda" if per_worker_gpu else "cpu")
                self.job = job

            def shard(self, k):
                return record_one(self.model, k, **self.job)

        spec_ref, job_ref = ray.put(model_spec(model)), ray.put(job)
        actors = [Recorder.remote(spec_ref, job_ref) for _ in range(min(workers, len(todo)) or 1)]
        pool = ray.util.ActorPool(actors)
        for entry in pool.map_unordered(lambda actor, k: actor.shard.remote(k), todo):
            on_done(entry)
    finally:
        if started_here:
            ray.shutdown()
