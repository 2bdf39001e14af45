package io.github.govss.vss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import com.connectrpc.Code;
import com.connectrpc.ResponseMessage;
import com.connectrpc.protocols.NetworkProtocol;
import com.google.protobuf.ByteString;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import vss.v1.Vss;
import vss.v1.VssServiceClientInterface;

/** JavaClientTest shows the client is usable from Java, with the blocking calls. */
class JavaClientTest {
    @Test
    void putAndGetFromJava() throws Exception {
        try (VssServer server = VssServer.start(List.of("--auth", "signature"))) {
            SignatureKey key = SignatureKey.generate();
            VssServiceClientInterface vss = VssClients.create(
                server.getBaseUrl(), Credentials.signature(key), NetworkProtocol.CONNECT, false,
                new okhttp3.OkHttpClient(), Duration.ofSeconds(5));

            Vss.PutObjectRequest put = Vss.PutObjectRequest.newBuilder()
                .setStoreId("java")
                .addTransactionItems(Vss.KeyValue.newBuilder()
                    .setKey("k").setVersion(0).setValue(ByteString.copyFromUtf8("from java")))
                .build();
            assertInstanceOf(ResponseMessage.Success.class, vss.putObjectsBlocking(put, java.util.Map.of()).execute());

            Vss.GetObjectRequest get = Vss.GetObjectRequest.newBuilder().setStoreId("java").setKey("k").build();
            ResponseMessage<Vss.GetObjectResponse> got = vss.getObjectBlocking(get, java.util.Map.of()).execute();
            Vss.KeyValue kv = ((ResponseMessage.Success<Vss.GetObjectResponse>) got).getMessage().getValue();
            assertEquals(1, kv.getVersion());
            assertEquals("from java", kv.getValue().toStringUtf8());

            // Without credentials the signature-only server refuses.
            VssServiceClientInterface anonymous = VssClients.create(server.getBaseUrl(), Credentials.NONE);
            ResponseMessage<Vss.GetObjectResponse> refused = anonymous.getObjectBlocking(get, java.util.Map.of()).execute();
            ResponseMessage.Failure<Vss.GetObjectResponse> failure = assertInstanceOf(ResponseMessage.Failure.class, refused);
            assertEquals(Code.UNAUTHENTICATED, failure.getCause().getCode());
            assertEquals(Vss.ErrorCode.AUTH_EXCEPTION, VssErrors.vssError(failure.getCause()).getErrorCode());
        }
    }

    @Test
    void lnurlAuthFromJava() throws Exception {
        try (VssServer server = VssServer.startLnurlAuth(List.of("--auth", "jwt"))) {
            SignatureKey key = SignatureKey.generate();
            // One key for every domain, and a key per domain (LUD-05) through a lambda.
            LnurlAuth fixed = Credentials.lnurlAuth(server.getLnurl(), key);
            LnurlAuth perDomain = Credentials.lnurlAuth(server.getLnurl(), domain -> key, null, Duration.ofSeconds(30));
            VssServiceClientInterface vss = VssClients.create(server.getBaseUrl(), fixed);
            Vss.PutObjectRequest put = Vss.PutObjectRequest.newBuilder()
                .setStoreId("java")
                .addTransactionItems(Vss.KeyValue.newBuilder()
                    .setKey("k").setVersion(0).setValue(ByteString.copyFromUtf8("from java")))
                .build();
            assertInstanceOf(ResponseMessage.Success.class, vss.putObjectsBlocking(put, java.util.Map.of()).execute());

            Vss.GetObjectRequest get = Vss.GetObjectRequest.newBuilder().setStoreId("java").setKey("k").build();
            ResponseMessage<Vss.GetObjectResponse> got = VssClients.create(server.getBaseUrl(), perDomain)
                .getObjectBlocking(get, java.util.Map.of()).execute();
            assertEquals("from java", ((ResponseMessage.Success<Vss.GetObjectResponse>) got).getMessage().getValue().getValue().toStringUtf8());
            assertEquals(Duration.ofSeconds(30), perDomain.getRefreshBefore());
        }
    }
}
