# tmi-db-exporter: small image, unprivileged user, health check on /healthz.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md queries.yaml ./
COPY tmi_db_exporter ./tmi_db_exporter
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter \
    && rm -rf /src

WORKDIR /
USER 10001
EXPOSE 9432
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["tmi-db-exporter", "healthcheck"]
# The check asks /healthz with the settings from the environment (port, web config): https when
# TLS is on; with basic auth on it needs TMI_EXPORTER_HEALTHZ_WITHOUT_AUTH=true and says so.
ENTRYPOINT ["tmi-db-exporter"]
CMD ["run"]
