# One image for every cumulo service; the Deployment's command picks the service
# (python -m cumulo_auth, ...). The gateway runs the upstream Envoy image.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml constraints.txt ./
COPY gen gen
COPY libs libs
COPY services services
COPY gateway gateway
COPY sdk sdk
COPY devstack devstack
COPY bench bench
RUN pip install --no-cache-dir -c constraints.txt . && useradd --uid 10001 --no-create-home cumulo
USER 10001
CMD ["python", "-m", "cumulo_auth"]
