# mde-chatops: slim, non-root, with a health check. Build: docker build -t mde-chatops .
# Run: docker run --env-file bot.env mde-chatops db upgrade, then the same with `serve` (the default).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# every dependency from the hash-pinned locks (scripts/lock): the build backend for this stage, the
# runtime dependencies for the image; then the project itself, adding nothing
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/build.txt \
 && pip install --no-cache-dir --prefix=/install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY mde ./mde
COPY approvals ./approvals
COPY bot ./bot
# byte-compiled at install time, so the runtime needs no writable file system
RUN pip install --no-cache-dir --prefix=/install --no-deps --no-build-isolation .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mde-chatops" \
      org.opencontainers.image.description="Contain Microsoft Defender for Endpoint devices from chat, with approvals"
# a numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd
RUN groupadd --gid 10001 mde \
 && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin mde
COPY --from=build /install /usr/local
USER 10001:10001
WORKDIR /home/mde
ENV HOST=0.0.0.0 PORT=3978 LOG_FORMAT=json PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 3978
# liveness only (the process answers); readiness, which needs the database, is /readyz
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3978'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
ENTRYPOINT ["mde-chatops"]
CMD ["serve"]
