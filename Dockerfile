# The gateway image: python:3.11-slim, the package and its pinned dependencies in a venv,
# run as the unprivileged user 10001 (the Helm chart's securityContext expects this uid and a
# read-only root filesystem, with /tmp mounted writable). Build: docker build -t token-gateway .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
COPY gateway ./gateway
COPY policies ./policies
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
    --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["python", "-m", "gateway"]
CMD ["serve", "--config", "/etc/token-gateway/config.yaml", "--host", "0.0.0.0", "--port", "8080"]
