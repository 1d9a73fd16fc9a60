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
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TMI_EXPORTER_LISTEN_PORT', '9432'), timeout=4)"
ENTRYPOINT ["tmi-db-exporter"]
CMD ["run"]
