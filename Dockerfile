# slogate images. CPU (default target):      docker build -t slogate .
#                 CUDA (CUDA 12 + cuDNN 9): docker build --target cuda -t slogate:cuda .
# Both run as a non-root user, serve slogate.yaml on 0.0.0.0:8000 and report health on /v2/health/ready.

# ---- build: dependencies and the compiled TypeScript ----
FROM node:24-bookworm-slim AS build
WORKDIR /app
# onnxruntime-node's install script would download CUDA binaries; the CPU ones ship in its tarball.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --ignore-scripts

# ---- cpu: the default image ----
FROM node:24-bookworm-slim AS cpu
WORKDIR /app
ENV NODE_ENV=production \
    SLOGATE_HOST=0.0.0.0 \
    SLOGATE_PORT=8000
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json slogate.yaml ./
COPY bin bin
COPY models/digits/*.onnx models/digits/model.yaml models/digits/eval.bin models/digits/
# The latency-profile cache lives beside the config; the non-root user must be able to write it.
RUN mkdir -p .slogate-cache && chown node:node .slogate-cache
USER node
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.SLOGATE_PORT||8000)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/cli.js", "serve", "--config", "slogate.yaml"]

# ---- cuda: onnxruntime's CUDA 12 execution provider (fetched at build time) ----
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS cuda
WORKDIR /app
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json slogate.yaml ./
COPY bin bin
COPY models/digits/*.onnx models/digits/model.yaml models/digits/eval.bin models/digits/
# Runs onnxruntime-node's own install script, which downloads the CUDA 12 provider next to its CPU binaries.
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js \
 && useradd --system --uid 10001 slogate && mkdir -p .slogate-cache && chown slogate .slogate-cache
USER slogate
ENV NODE_ENV=production \
    SLOGATE_HOST=0.0.0.0 \
    SLOGATE_PORT=8000 \
    SLOGATE_DEVICE=cuda
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.SLOGATE_PORT||8000)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/cli.js", "serve", "--config", "slogate.yaml"]

# The CPU image is the default when no --target is given.
FROM cpu
