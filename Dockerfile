# One image for every cumulo service; the Deployment's command picks the service
# (python -m cumulo_auth, ...). The gateway runs the upstream Envoy image; its init container
# takes the web console (built in the first stage) and Envoy's config from this one.
FROM node:24-slim AS console
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/index.html web/vite.config.ts web/tsconfig.json ./
COPY web/src src
RUN npm run build

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
COPY --from=console /web/dist web/dist
RUN pip install --no-cache-dir -c constraints.txt . && useradd --uid 10001 --no-create-home cumulo
USER 10001
CMD ["python", "-m", "cumulo_auth"]
