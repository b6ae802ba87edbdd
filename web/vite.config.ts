/**
 * Builds the explorer into web/dist. onnxruntime-web's wasm binary is emitted as a local asset
 * (the page imports its URL and sets ort.env.wasm.wasmPaths to it), so the page never reaches a CDN.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  publicDir: path.join(here, 'public'),
  build: {
    outDir: path.join(here, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    // onnxruntime-web and vega are large single modules; splitting them gains nothing here.
    chunkSizeWarningLimit: 4096,
  },
});
