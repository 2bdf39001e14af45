import { defineConfig } from "vite";

// The build goes to dist/, which vss-server embeds (explorer.go) and serves at
// /explorer/. Relative asset URLs let the same files work under any path.
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  resolve: {
    // One copy of the runtime libraries, whether imported here or by the client package.
    dedupe: ["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-web"],
  },
});
