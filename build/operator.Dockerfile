# syntax=docker/dockerfile:1
# The Wharf operator image. Build from the repository root:
#   docker build -f build/operator.Dockerfile -t ghcr.io/wharf-dev/wharf-operator:0.1.0 .
# Multi-stage: compile the operator with the dev dependencies, ship it with production
# dependencies only, on Node 24 LTS, as a non-root user. config/manager/manager.yaml runs it.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY operator/ operator/
RUN npx tsc -p operator/tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/operator ./dist/operator
USER 1000:1000
EXPOSE 8081
ENTRYPOINT ["node", "dist/operator/src/main.js"]
