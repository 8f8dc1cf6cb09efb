# syntax=docker/dockerfile:1
# The Wharf registry image. Build from the repository root:
#   docker build -f build/registry.Dockerfile -t ghcr.io/wharf-dev/wharf-registry:0.1.0 .
# Multi-stage: compile TypeScript with the dev dependencies, then ship the compiled output with
# production dependencies only, on Node 24 LTS, as a non-root user.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY registry/ registry/
RUN npx tsc -p tsconfig.json \
 && cp -r registry/src/metadata/migrations dist/registry/src/metadata/migrations \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# The defaults (listen on 0.0.0.0:5000, data in /var/lib/wharf) are a config file, not WHARF_*
# variables, which would win over a config file mounted in its place (build/registry-config.yaml).
ENV NODE_ENV=production \
    WHARF_CONFIG_FILE=/etc/wharf/config/config.yaml
COPY build/registry-config.yaml /etc/wharf/config/config.yaml
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The image's "node" user; numeric so that runAsNonRoot can be verified.
RUN mkdir -p /var/lib/wharf && chown 1000:1000 /var/lib/wharf
USER 1000:1000
VOLUME /var/lib/wharf
EXPOSE 5000
# Node.js flags: registry/src/node-flags.ts (a unit test keeps this line in step).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--min-semi-space-size=4", "--no-incremental-marking", "--expose-gc", "dist/registry/src/main.js"]
