"""The benchmark workloads' shapes and folder names (no torch import, so compare.py stays light).

(a)/(b): a small GPT-style decoder at two lengths; (c): layers shaped like GPT-2 small. Vocab 1024
everywhere keeps the files small. Batch 1, input_ids int64 [1, seq].
"""

WORKLOADS = {
    "a": dict(d_model=256, n_heads=4, d_ff=1024, n_layers=2, seq=1024, vocab=1024),
    "b": dict(d_model=256, n_heads=4, d_ff=1024, n_layers=2, seq=4096, vocab=1024),
    "c": dict(d_model=768, n_heads=12, d_ff=3072, n_layers=2, seq=512, vocab=1024),
}


def workload_config(name, seq=None):
    """The config of workload `name`, with its sequence length replaced by `seq` when given."""
    config = dict(WORKLOADS[name])
    if seq is not None:
        config["seq"] = seq
    return config


def workload_dir_name(name, seq=None):
    """Folder name of a workload: 'a', or 'a_seq128' when the length is overridden."""
    return name if seq is None else f"{name}_seq{seq}"
