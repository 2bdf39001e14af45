/**
 * A client for VSS (Versioned Storage Service) servers: the generated messages and
 * service descriptor of vss.v1, authentication (the secp256k1 signature scheme and bearer
 * tokens) and client constructors. The transports live in "@govss/vss-client/web"
 * (browsers, Connect-Web) and "@govss/vss-client/node" (Node.js, Connect-Node).
 *
 * @module
 */
export * from "./gen/vss/v1/vss_pb.js";
export {
  SIGNING_CONSTANT,
  authInterceptor,
  bearerAuth,
  publicKeyHex,
  signatureAuth,
  signatureHeader,
  type PrivateKey,
  type VssAuth,
} from "./auth.js";
export {
  clientInterceptors,
  createVssClient,
  vssErrorCode,
  type VssClient,
  type VssClientOptions,
} from "./client.js";
