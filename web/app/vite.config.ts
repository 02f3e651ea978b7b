import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The build goes where the edge embeds it (edge/internal/webapp/dist, committed): `make web`
// rebuilds it and `make web-check` fails when the committed files differ from a fresh build.
export default defineConfig({
  resolve: {
    alias: { "@charla/client": fileURLToPath(new URL("../sdk/src/index.ts", import.meta.url)) },
  },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../../edge/internal/webapp/dist", import.meta.url)),
    emptyOutDir: true,
    // The edge's Content-Security-Policy allows no inline script: no preload polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  // `npx vite` (hot reload) forwards the edge's routes to a running `make run`.
  server: {
    proxy: {
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
      "/demo": "http://127.0.0.1:8080",
      "/health": "http://127.0.0.1:8080",
    },
  },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
});
