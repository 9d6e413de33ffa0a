# syntax=docker/dockerfile:1
#
# One image for every service; docker-compose.yml picks the service with its command
# (`python -m services.<name>`). Health checks are declared in compose, per service.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtual environment with the project and its runtime dependencies -----------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler for any dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first (from pyproject's [project].dependencies only: no dev or test extras), so a
# source change does not reinstall them.
COPY pyproject.toml README.md* ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install -r /tmp/requirements.txt

COPY shared ./shared
COPY services ./services
COPY inbox ./inbox
RUN pip install --no-deps . \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0

RUN groupadd --system --gid 10001 inbox \
    && useradd --system --uid 10001 --gid inbox --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin inbox

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The source stays owned by root: the service user can read it, not change it.
COPY shared ./shared
COPY services ./services
COPY inbox ./inbox

USER inbox:inbox

# gateway (API and side door), then the side doors of router, classifier, presence, notifier.
EXPOSE 8080 9101 9102 9103 9104

CMD ["python", "-m", "services.gateway"]
