# revring-router: one process, SQLite in the /data volume by default.
# A specific Python release, so a rebuild does not change the interpreter silently.

# The project's wheel, built with a locked backend (build-requirements.lock: setuptools
# with its hashes), so no unpinned package is fetched; nothing of this stage is kept.
FROM python:3.11.14-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY build-requirements.lock ./
RUN pip install --require-hashes --no-deps -r build-requirements.lock
COPY pyproject.toml README.md ./
COPY router ./router
COPY sinks ./sinks
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11.14-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ROUTER_HOST=0.0.0.0 \
    ROUTER_PORT=8080 \
    ROUTER_STORE=sqlite:////data/router.db \
    ROUTER_CONFIG=/etc/revring-router/rules.yaml

RUN groupadd --system --gid 10001 router \
    && useradd --system --uid 10001 --gid router --home-dir /nonexistent --shell /usr/sbin/nologin router \
    && mkdir -p /data /etc/revring-router \
    && chown router:router /data \
    && chmod 0700 /data

WORKDIR /app
# Dependencies exactly as locked (versions and hashes), then the project's wheel alone;
# pip and setuptools are not needed at run time and leave the image.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps /wheels/*.whl \
    && rm -rf /wheels \
    && pip uninstall --yes pip setuptools wheel
COPY rules.yaml /etc/revring-router/rules.yaml

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080

# Readiness, not liveness: Docker's health is what compose's `depends_on:
# service_healthy` and load balancers that read it act on, and a router whose store
# refuses writes must not be sent calls (a Kubernetes liveness probe uses /healthz).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('ROUTER_PORT', '8080')}/readyz\", timeout=2)"]

ENTRYPOINT ["revring-router"]
CMD ["serve"]
