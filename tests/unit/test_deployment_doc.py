"""docs/deployment.md's HAProxy and nginx configurations are valid as written: HAProxy's own
check (`haproxy -c`) and nginx's (`nginx -t`) accept them. (Both also run: HAProxy in front of
three replicas in tests/e2e/test_replicas_behind_balancer.py, nginx in front of a gateway in
tests/e2e/test_nginx_front.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path


from tests.support.balancer import documented_config, haproxy_path
from tests.support.binaries import system_program

def nginx_path() -> str:
    return system_program("nginx", required_by="REQUIRE_LB")


def test_the_documented_haproxy_config_passes_haproxy_check(tmp_path: Path):
    config = tmp_path / "haproxy.cfg"
    config.write_text(documented_config("haproxy"))

    checked = subprocess.run([haproxy_path(), "-c", "-f", str(config)], capture_output=True,
                             text=True, timeout=30)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_documented_nginx_config_passes_nginx_test(tmp_path: Path):
    config = tmp_path / "nginx.conf"
    config.write_text(f"pid {tmp_path / 'nginx.pid'};\n" + documented_config("nginx"))

    checked = subprocess.run([nginx_path(), "-t", "-q", "-p", str(tmp_path), "-e",
                              str(tmp_path / "error.log"), "-c", str(config)],
                             capture_output=True, text=True, timeout=30)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_broken_config_is_refused_by_the_same_check(tmp_path: Path):
    """The checks above can fail: a typo in a directive is caught."""
    config = tmp_path / "haproxy.cfg"
    config.write_text(documented_config("haproxy").replace("retry-on", "retry-onn"))

    checked = subprocess.run([haproxy_path(), "-c", "-f", str(config)], capture_output=True,
                             text=True, timeout=30)

    assert checked.returncode != 0
