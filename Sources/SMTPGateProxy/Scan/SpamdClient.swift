import NIOCore
import SMTPGateCore

/// Asks spamd for a message's score with the SPAMC `CHECK` command over a unix socket or TCP.
enum SpamdClient {
    /// Never fails: every failure (refused, timeout, garbage, closed early) is a `.failed(reason)` report.
    /// `timeout` bounds the whole exchange, connecting included; `user` picks spamd's per-user settings.
    static func scan(_ message: MessageSource, at endpoint: ScannerEndpoint, timeout: TimeAmount,
                     on loop: EventLoop, user: String? = nil) -> EventLoopFuture<ScanReport> {
        guard let header = SpamdProtocol.checkRequest(contentLength: message.size, user: user) else {
            return loop.makeSucceededFuture(ScanReport(scanner: .spamd, result: .failed("unusable spamd user name"),
                                                       seconds: 0, size: message.size))
        }
        let request = ScannerRequest(scanner: .spamd, header: header, pieceHeader: nil, trailer: [])
        return ScannerConnection.exchange(request, reading: SpamdReplyReader.self, message: message, at: endpoint,
                                          timeout: timeout, on: loop)
    }
}

extension SpamdReplyReader: ScannerAnswer {
    mutating func take(_ bytes: ByteBufferView) -> ScanReport.Result? {
        feed(bytes)?.result
    }

    func atEnd() -> ScanReport.Result {
        end().result
    }
}
