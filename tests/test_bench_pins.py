"""`make bench` installs the peers with requirements.lock as a constraint: the two pin files must not
disagree (issue 24: a platformdirs pin in both drifted and pip stopped with ResolutionImpossible)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins(path: Path) -> dict[str, str]:
    """name (normalised as pip does) -> pinned version, of a requirements file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return out


def test_peers_pin_nothing_the_lock_pins():
    lock, peers = pins(ROOT / "requirements.lock"), pins(ROOT / "bench" / "requirements-peers.txt")
    assert peers, "bench/requirements-peers.txt lists no pins"
    shared = {name: (lock[name], peers[name]) for name in set(lock) & set(peers)}
    assert not shared, f"pinned in both requirements.lock and bench/requirements-peers.txt (lock, peers): {shared}"


def test_bench_constraints_agree_with_the_lock_and_the_makefile():
    lock, constraints = pins(ROOT / "requirements.lock"), pins(ROOT / "bench" / "constraints.txt")
    for name, version in constraints.items():
        assert lock.get(name, version) == version, name
    assert f"torch=={constraints['torch']}" in (ROOT / "Makefile").read_text()


def test_run_py_lists_every_bench_script():
    """Every bench_*.py but bench_distributed.py (run on its own) is run by one of run.py's items (items 9 and
    10: lens, attention), and run.py knows the new items' goals."""
    import ast

    tree = ast.parse((ROOT / "bench" / "run.py").read_text())
    items = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", None) == "ITEMS")
    assert items[-2:] == ["lens", "attention"]
    source = (ROOT / "bench" / "run.py").read_text()
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        if script.name == "bench_distributed.py":
            continue
        assert script.name in source, f"{script.name} is not run by bench/run.py"
    for name in ("GOAL_LENS", "_render_lens", "_render_attention", "def lens(", "def attention("):
        assert name in source, name
