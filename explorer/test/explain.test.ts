import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { explainError, isNetworkFailure } from "../src/explain.js";

const asked = { action: 'listing store "wallet"', server: "http://127.0.0.1:8080", user: "02ab" };

describe("error explanations", () => {
  it("tells an unreachable server from one that does not allow the page's origin", () => {
    const failed = new ConnectError("Failed to fetch", Code.Unknown, undefined, undefined, new TypeError("Failed to fetch"));
    assert.ok(isNetworkFailure(failed));
    assert.ok(isNetworkFailure(new TypeError("NetworkError when attempting to fetch resource.")));
    const down = explainError(failed, asked, "http://127.0.0.1:8080", false);
    assert.equal(
      down,
      'Listing store "wallet" as user 02ab on http://127.0.0.1:8080 failed: the server did not answer. Is it running, and is this its address?',
    );
    const cors = explainError(failed, asked, "http://127.0.0.1:9000", true);
    assert.match(cors, /does not allow calls from http:\/\/127\.0\.0\.1:9000 \(CORS\)/);
    assert.match(cors, /--cors-origins http:\/\/127\.0\.0\.1:9000/);
    assert.match(explainError(failed, asked, "http://127.0.0.1:8080", true), /the connection failed/);
  });

  it("says what a refusal means", () => {
    const cases: [ConnectError, RegExp][] = [
      [new ConnectError("invalid signature", Code.Unauthenticated), /refused the credentials \(unauthenticated: invalid signature\)\. Check the private key/],
      [new ConnectError("quota exceeded", Code.ResourceExhausted), /quota or rate limit \(resource_exhausted: quota exceeded\)/],
      [new ConnectError("store_id is empty", Code.InvalidArgument), /refused the request as invalid \(invalid_argument: store_id is empty\)/],
      [new ConnectError("no such key", Code.NotFound), /not found \(not_found: no such key\); it may have been deleted/],
      [new ConnectError("the attempt took longer", Code.DeadlineExceeded), /did not answer in time \(deadline_exceeded/],
      [new ConnectError("boom", Code.Internal), /failed: internal: boom$/],
    ];
    for (const [err, want] of cases) {
      assert.ok(!isNetworkFailure(err));
      assert.match(explainError(err, asked, asked.server), want);
    }
    assert.equal(explainError(new Error("paste a bearer token"), asked, asked.server), 'Listing store "wallet" as user 02ab on http://127.0.0.1:8080 failed: paste a bearer token');
  });
});
