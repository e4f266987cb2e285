# rolegate's container image: a non-root user, nothing written outside /var/lib/rolegate (run it
# with a read-only root filesystem), and a health check on /health/ready.
#
#   docker build -t rolegate .          (or: podman build -t rolegate .)
#   docker run --read-only -p 8080:8080 -v rolegate-state:/var/lib/rolegate rolegate
#
# Without --config it serves the embedded defaults (mock model, development issuer). With your
# own file, mount it and name it:
#   docker run --read-only -p 8080:8080 -v ./rolegate.yaml:/etc/rolegate/rolegate.yaml:ro \
#     -v rolegate-state:/var/lib/rolegate rolegate serve --config /etc/rolegate/rolegate.yaml \
#     --host 0.0.0.0 --port 8080 --state-dir /var/lib/rolegate
#
# BASE is any Debian-like image; one without Python (a debootstrap'ed Debian) gets Debian's
# python3. tests/e2e/test_container_entry.py runs the ENTRYPOINT, CMD and HEALTHCHECK below.
ARG BASE=docker.io/library/python:3.12-slim-bookworm

FROM ${BASE} AS build
RUN command -v python3 >/dev/null || (apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*)
COPY pyproject.toml README.md LICENSE /src/
COPY src /src/src
# Behind a TLS-intercepting proxy, hand its CA to pip without baking it into the image:
#   docker build --secret id=build_ca,src=/etc/ssl/certs/ca-certificates.crt .
RUN --mount=type=secret,id=build_ca \
    if [ -s /run/secrets/build_ca ]; then export PIP_CERT=/run/secrets/build_ca; fi \
    && python3 -m venv /opt/rolegate \
    && /opt/rolegate/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && /opt/rolegate/bin/python -m compileall -q /opt/rolegate

FROM ${BASE}
RUN command -v python3 >/dev/null || (apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*)
COPY --from=build /opt/rolegate /opt/rolegate
RUN useradd --system --uid 10001 --home-dir /var/lib/rolegate --shell /usr/sbin/nologin rolegate \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/rolegate
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/rolegate/bin:$PATH
USER 10001:10001
WORKDIR /var/lib/rolegate
VOLUME /var/lib/rolegate
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/opt/rolegate/bin/python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=2).status != 200)"]
ENTRYPOINT ["/opt/rolegate/bin/rolegate"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--state-dir", "/var/lib/rolegate"]
