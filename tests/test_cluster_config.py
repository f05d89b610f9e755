"""Cluster files and shorthands: valid ones load, bad ones name the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from steppe.core.cluster_config import load_cluster
from steppe.core.errors import ConfigError


def test_shorthand_any_node_size() -> None:
    assert load_cluster("80x8:H100").total_gpus == 640
    one = load_cluster("1x640:h100")
    assert len(one.nodes) == 1 and one.nodes[0].gpus == 640 and one.nodes[0].gpu_type.name == "H100"


def test_bundled_demo_cluster() -> None:
    c = load_cluster("hub-sample")
    assert c.total_gpus == 64 and c.tenants


def test_full_file(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text(
        'name = "astana"\n[[nodes]]\nprefix = "h200-"\ncount = 2\ngpus = 8\ngpu_type = "H200"\n'
        '[[nodes]]\ncount = 1\ngpus = 4\ngpu_type = "A100"\n'
        "[tenants.kaznu]\nweight = 2.0\ngpu_quota = 8\n[qos.interactive]\npriority = 100\nlatency_critical = true\n"
    )
    c = load_cluster(f)
    assert c.name == "astana" and c.total_gpus == 20
    assert c.gpus_by_type == {"H200": 16, "A100": 4}
    assert [n.name for n in c.nodes] == ["h200-001", "h200-002", "a100-001"]
    assert c.tenant("kaznu").gpu_quota == 8 and c.tenant("other").weight == 1.0
    assert c.qos_of("interactive").latency_critical


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ("[[nodes]]\ngpus = -1\ngpu_type = 'H100'\n", "nodes[0].gpus", "positive integer"),
        ("[[nodes]]\ngpus = 8\ngpu_type = 'X9'\n", "nodes[0].gpu_type", "unknown GPU type"),
        ("[[nodes]]\ngpus = 8\n", "nodes[0].gpu_type", "required"),
        ("[[nodes]]\ngpus = 8\ngpu_type = 'H100'\ncolour = 'red'\n", "nodes[0].colour", "unknown key"),
        ("name = 'x'\n", "nodes", "at least one"),
        ("[[nodes]]\ngpus = 8\ngpu_type = 'H100'\n[tenants.a]\nweight = 0\n", "tenants.a.weight", "positive"),
        (
            "[[nodes]]\ngpus = 8\ngpu_type = 'H100'\n[qos.x]\nlatency_critical = 'yes'\n",
            "qos.x.latency_critical",
            "true",
        ),
        ("nodes = [\n", "", "not valid TOML"),
    ],
)
def test_bad_file_names_key_and_problem(tmp_path: Path, body: str, key: str, problem: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_cluster(f)
    assert err.value.key == key
    assert problem in str(err.value) and "bad.toml" in str(err.value)


def test_missing_file_and_bad_shorthand() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_cluster("nowhere.toml")
    with pytest.raises(ConfigError, match="unknown GPU type"):
        load_cluster("2x8:Z100")
