// The TypeScript side of the cross-language encryption test (compat/encryption/ts.sh):
//   node build-test/compat-encryption.js write <store-id prefix>
//   node build-test/compat-encryption.js read <store-id prefix>
// against the vss-server at $VSS_BASE_URL (no authentication), with the fixture of the
// vectors file at $VSS_ENCRYPTION_VECTORS (default: the repository's). write writes every
// store of the fixture under the prefix; read checks what a writer (of any language) wrote
// there, printing "N checks passed", or exits 1 with one line per mismatch.
import { createNodeVssClient } from "@govss/vss-client/node";
import { readFixture, writeFixture } from "./fixture.js";
import { loadVectors, vectorsPath } from "./vectors.js";

const [command, prefix] = process.argv.slice(2);
const baseUrl = process.env.VSS_BASE_URL;
if ((command !== "write" && command !== "read") || !prefix || !baseUrl) {
  console.error("usage: VSS_BASE_URL=http://127.0.0.1:PORT compat-encryption.js write|read <store-id prefix>");
  process.exit(2);
}
const vectors = loadVectors();
const client = createNodeVssClient(baseUrl);
if (command === "write") {
  await writeFixture(client, vectors, prefix);
  console.log(`ts: wrote ${vectors.fixture.stores.length} stores under ${prefix} (${vectorsPath()})`);
} else {
  const { checks, problems } = await readFixture(client, vectors, prefix);
  if (problems.length > 0) {
    console.error(`ts: the stores under ${prefix} do not hold the fixture (${problems.length} of ${checks} checks failed):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`ts: read ${vectors.fixture.stores.length} stores under ${prefix}, tampering detected: ${checks} checks passed`);
}
