import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allowedServers, chooseServer, originOf } from "../src/servers.js";

describe("allowed servers", () => {
  const own = "http://127.0.0.1:8080";

  it("allows only the page's own server unless its config lists others", () => {
    for (const config of [undefined, null, {}, { allowedServers: "https://a.example" }, { allowedServers: [] }, "x"]) {
      assert.deepEqual(allowedServers(own, config), [own]);
    }
    assert.deepEqual(
      allowedServers(own, { allowedServers: ["https://a.example", own, "https://a.example", 7, "javascript:alert(1)", "https://b.example:8443"] }),
      [own, "https://a.example", "https://b.example:8443"],
    );
  });

  it("lets a link choose only among the allowed servers, by origin", () => {
    const servers = [own, "https://a.example"];
    for (const wanted of [
      "http://127.0.0.1:9999",
      "https://evil.example",
      "//evil.example",
      "evil.example",
      `http://127.0.0.1:8080@evil.example`,
      "https://a.example.evil.example",
      "https://evil.example/?https://a.example",
      "javascript:alert(1)",
      "",
    ]) {
      assert.equal(chooseServer(wanted, servers), undefined, wanted);
    }
    assert.equal(chooseServer("https://a.example/some/path?x#y", servers), "https://a.example");
    assert.equal(chooseServer("HTTPS://A.EXAMPLE:443/", servers), "https://a.example");
    assert.equal(chooseServer("http://127.0.0.1:8080", servers), own);
    assert.equal(originOf("ftp://a.example"), undefined);
  });
});
