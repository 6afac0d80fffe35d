# The action's image. GitHub builds it at the start of every job that uses the action
# (unless action.yml points at a prebuilt docker://ghcr.io/... image), so it is kept small
# and quick to build: one dependency layer from a hash-pinned lock, then the program.
#
# The base is a build argument so that the same file builds on GitHub (python:3.12-slim)
# and on machines without a registry (tests/container/run.sh builds a Debian base locally).
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# PYTHONDONTWRITEBYTECODE: the bytecode is compiled at build time; at run time nothing is
# written anywhere (the workspace in particular must stay untouched: files written there
# would be owned by root and break later steps of the job).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUTF8=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY requirements/runtime.txt /tmp/runtime.txt

# One layer: a virtual environment with exactly the locked, hash-checked wheels; then drop
# the installer (pip, setuptools, wheel) and every AWS service model except the three the
# program uses (s3, cloudfront, sts; only the newest API version of each, which is the one
# botocore loads; no examples, which are documentation), keeping botocore's own top-level
# data files (endpoints, partitions, retry and default-configuration tables); then compile
# the bytecode once, here.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-cache-dir --no-compile --require-hashes \
        --no-deps --only-binary=:all: --requirement /tmp/runtime.txt \
 && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools wheel \
 && rm /tmp/runtime.txt \
 && find /opt/venv/lib/python3*/site-packages/botocore/data \
        /opt/venv/lib/python3*/site-packages/boto3/data -mindepth 1 -maxdepth 1 -type d \
        ! -name s3 ! -name cloudfront ! -name sts -exec rm -rf {} + \
 && for service in /opt/venv/lib/python3*/site-packages/botocore/data/*/; do \
        find "$service" -mindepth 1 -maxdepth 1 -type d | sort | head -n -1 | xargs -r rm -rf; \
    done \
 && find /opt/venv/lib/python3*/site-packages/botocore/data -name 'examples-*.json' -delete \
 && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib

COPY deployer/ /app/deployer/
COPY entrypoint.py /app/entrypoint.py
RUN /opt/venv/bin/python -m compileall -q /app

ENTRYPOINT ["/opt/venv/bin/python", "/app/entrypoint.py"]
