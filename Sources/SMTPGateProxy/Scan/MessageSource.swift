import NIOCore

/// A finished message as a scanner reads it: its size, and its bytes in order, piece by piece, each piece
/// handed over only after the previous one was taken (so a slow scanner never makes the proxy read ahead).
protocol MessageSource: AnyObject {
    /// Bytes of the message (un-stuffed, as the recipient will see it).
    var size: Int { get }

    /// Calls `body` with the message's bytes in pieces of at most `maxChunk`, waiting for each returned
    /// future before reading the next piece; the result fails if reading or `body` fails.
    func forEachChunk(maxChunk: Int, on loop: EventLoop,
                      _ body: @escaping (ByteBuffer) -> EventLoopFuture<Void>) -> EventLoopFuture<Void>
}
