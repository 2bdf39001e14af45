package io.github.govss.vss

import java.io.IOException
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.concurrent.ConcurrentHashMap

/**
 * TcpProxy forwards loopback TCP connections to [target] (`host:port`) byte for byte, so
 * that a test can break a client's connections the way a network does: [cut] closes every
 * open connection at once, while [down] is true new connections are closed as soon as they
 * are accepted, and while [blackhole] is true they are accepted and left unanswered.
 */
class TcpProxy(private val target: String) : AutoCloseable {
    private val listener = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    private val open = ConcurrentHashMap.newKeySet<Socket>()

    /** While true, connections are refused (accepted and closed at once). */
    @Volatile
    var down = false

    /** While true, connections are accepted and then neither forwarded nor answered. */
    @Volatile
    var blackhole = false

    /** The proxy's URL, for example `http://127.0.0.1:41234`. */
    val baseUrl: String = "http://127.0.0.1:${listener.localPort}"

    init {
        Thread({
            while (!listener.isClosed) {
                val client = try {
                    listener.accept()
                } catch (_: IOException) {
                    break
                }
                if (down) {
                    client.close()
                    continue
                }
                if (blackhole) {
                    open += client
                    continue
                }
                val (host, port) = target.split(":")
                val upstream = try {
                    Socket().apply { connect(InetSocketAddress(host, port.toInt()), 5_000) }
                } catch (_: IOException) {
                    client.close()
                    continue
                }
                open += client
                open += upstream
                pipe(client, upstream)
                pipe(upstream, client)
            }
        }, "tcp-proxy-accept").apply { isDaemon = true }.start()
    }

    private fun pipe(from: Socket, to: Socket) {
        Thread({
            try {
                from.getInputStream().copyTo(to.getOutputStream(), 64 * 1024)
            } catch (_: IOException) {
            } finally {
                from.close()
                to.close()
                open -= from
                open -= to
            }
        }, "tcp-proxy-pipe").apply { isDaemon = true }.start()
    }

    /** Closes every connection open through the proxy. */
    fun cut() {
        for (s in open.toList()) runCatching { s.close() }
        open.clear()
    }

    override fun close() {
        listener.close()
        cut()
    }
}
