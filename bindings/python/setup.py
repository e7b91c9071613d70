# Plain setuptools (no build isolation needed, so it installs offline with
# the distribution's setuptools):
#   pip install --no-build-isolation ./bindings/python
# The binding loads libkvprune.so at import: $KVPRUNE_LIBRARY, a copy placed
# in the package folder, or the system loader's (an installed library).
from setuptools import setup

setup(
    name="kvprune",
    version="0.2.0",
    description="Python binding of kv-cache-pruner (pruned KV cache inference on CPU)",
    packages=["kvprune"],
    package_data={"kvprune": ["libkvprune.so*"]},
    python_requires=">=3.8",
    license="MIT",
)
