"""A cloud of separate processes (what the benchmarks and the cross-service tests start) leaves
nothing behind: its folder holds a PostgreSQL cluster, an object store and logs, gigabytes after
a benchmark, and a machine that runs them daily fills its disk."""

import pathlib
import shutil
import tempfile

from cumulo_devstack.stack import Cloud


def test_a_cloud_removes_the_folder_it_made(infra):
    cloud = Cloud(prefix="cumulo-folder-", tls=infra.tls, identities=infra.identities)
    try:
        root = cloud.root
        assert root.is_dir() and any(root.iterdir())  # the building blocks keep their data there
    finally:
        cloud.stop()
    assert not root.exists()


def test_a_folder_given_to_a_cloud_stays_with_its_owner(infra):
    # Not under pytest's tmp_path: PostgreSQL runs as a user of its own and must reach the folder.
    folder = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-folder-"))
    try:
        cloud = Cloud(folder, tls=infra.tls, identities=infra.identities)
        cloud.stop()
        assert (folder / "postgres").is_dir()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
