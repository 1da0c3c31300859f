import NIOCore
import SMTPGateCore

/// Scans a message with clamd's INSTREAM over a unix socket or TCP, so clamd need not see the spool.
enum ClamdClient {
    /// Never fails: every failure (refused, timeout, garbage, closed early) is a `.failed(reason)` report.
    /// `timeout` bounds the whole exchange, connecting included.
    static func scan(_ message: MessageSource, at endpoint: ScannerEndpoint, timeout: TimeAmount,
                     on loop: EventLoop) -> EventLoopFuture<ScanReport> {
        let request = ScannerRequest(scanner: .clamd, header: ClamdProtocol.command,
                                     pieceHeader: { ClamdProtocol.chunkHeader(length: $0) }, trailer: ClamdProtocol.end)
        return ScannerConnection.exchange(request, reading: ClamdReplyReader.self, message: message, at: endpoint,
                                          timeout: timeout, on: loop)
    }
}

extension ClamdReplyReader: ScannerAnswer {
    mutating func take(_ bytes: ByteBufferView) -> ScanReport.Result? {
        feed(bytes)?.result
    }

    func atEnd() -> ScanReport.Result {
        end().result
    }
}
