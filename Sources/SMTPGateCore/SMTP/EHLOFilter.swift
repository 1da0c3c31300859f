/// Rewrites a positive EHLO reply: drops extensions the proxy cannot relay faithfully and notes the ones
/// that change how the proxy answers.
struct EHLOFilter {
    struct Result {
        var bytes: [UInt8]
        var enhancedStatusCodes: Bool
        /// AUTH is offered (`auth_require ifsupported`).
        var auth: Bool
        /// PIPELINING is offered (`reject_unauth_pipelining`).
        var pipelining: Bool
    }

    static let alwaysRemoved: Set<String> = ["CHUNKING", "BINARYMIME", "XEXCH50"]

    static func filter(_ reply: Reply, forbidStartTLS: Bool) -> Result {
        var kept: [[UInt8]] = []
        var esc = false
        var auth = false
        var pipelining = false
        for (n, line) in reply.lines.enumerated() {
            if n == 0 {
                kept.append(line)
                continue
            }
            let keyword = Self.keyword(line)
            if keyword == "ENHANCEDSTATUSCODES" { esc = true }
            if keyword == "AUTH" { auth = true }
            if keyword == "PIPELINING" { pipelining = true }
            if alwaysRemoved.contains(keyword) || (forbidStartTLS && keyword == "STARTTLS") { continue }
            kept.append(line)
        }
        for n in kept.indices where kept[n].count >= 4 {
            let last = n == kept.count - 1
            if last, kept[n][3] == 0x0d || kept[n][3] == 0x0a { continue }
            kept[n][3] = last ? 0x20 : 0x2d
        }
        return Result(bytes: kept.flatMap { $0 }, enhancedStatusCodes: esc, auth: auth, pipelining: pipelining)
    }

    static func keyword(_ line: [UInt8]) -> String {
        guard line.count > 4 else { return "" }
        var word: [UInt8] = []
        for b in line[4...] {
            if b == 0x20 || b == 0x0d || b == 0x0a || b == 0x3d { break }
            word.append((b >= 0x61 && b <= 0x7a) ? b - 0x20 : b)
            if word.count > 32 { break }
        }
        return String(decoding: word, as: UTF8.self)
    }
}
