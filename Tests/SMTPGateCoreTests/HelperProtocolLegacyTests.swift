import Testing
@testable import SMTPGateCore

@Suite("Helper protocol 0x0402: layout and validation")
struct HelperProtocolLegacyTests {
    let routerSide = ep("10.77.2.1", 40001)   // the connection's source as the proxy sees it (SNAT)
    let proxySide = ep("10.77.2.10", 9199)
    let client = ep("10.77.1.2", 51000)
    let mta = ep("10.77.3.25", 25)

    /// The query of helper-protocol.md, written out offset by offset.
    var handMadeQuery: [UInt8] {
        var b: [UInt8] = []
        b += [0x52, 0x50, 0x48, 0x44]          //  0 magic "RPHD"
        b += [0xde, 0xad, 0xbe, 0xef]          //  4 cookie
        b += [0x00, 0x00, 0x30, 0x39]          //  8 secret 12345
        b += [0x04, 0x02]                      // 12 version
        b += [0x00, 0x01]                      // 14 flags QUERY
        b += [10, 77, 2, 1]                    // 16 src
        b += [10, 77, 2, 10]                   // 20 dst
        b += [0x9c, 0x41]                      // 24 src_port 40001
        b += [0x23, 0xef]                      // 26 dst_port 9199
        b += [UInt8](repeating: 0, count: 32)  // 28 ident
        b += [UInt8](repeating: 0, count: 6)   // 60 mac
        return b
    }

    /// The FOUND reply to `handMadeQuery`, with ident "alice".
    var handMadeFound: [UInt8] {
        var b: [UInt8] = []
        b += [0x52, 0x50, 0x48, 0x44]          //  0 magic
        b += [0xde, 0xad, 0xbe, 0xef]          //  4 cookie echoed
        b += [0x00, 0x00, 0x30, 0x39]          //  8 secret echoed
        b += [0x04, 0x02]                      // 12 version
        b += [0x00, 0x12]                      // 14 flags REPLY|FOUND
        b += [10, 77, 1, 2]                    // 16 real client
        b += [10, 77, 3, 25]                   // 20 real destination
        b += [0xc7, 0x38]                      // 24 client port 51000
        b += [0x00, 0x19]                      // 26 destination port 25
        b += Array("alice".utf8) + [UInt8](repeating: 0, count: 27)  // 28 ident, NUL-terminated
        b += [UInt8](repeating: 0, count: 6)   // 60 mac
        return b
    }

    func decodedQuery() throws -> LegacyPacket {
        try LegacyPacket.decode(handMadeQuery, expecting: .query)
    }

    @Test func queryLayoutMatchesTheSpec() throws {
        #expect(handMadeQuery.count == 66)
        let encoded = try LegacyPacket.encodeQuery(cookie: 0xdead_beef, secret: 12345,
                                                   source: routerSide, destination: proxySide)
        #expect(encoded == handMadeQuery)
        let q = try decodedQuery()
        #expect(q == LegacyPacket(kind: .query, cookie: 0xdead_beef, secret: 12345,
                                  source: routerSide, destination: proxySide, ident: []))
    }

    @Test func foundReplyLayoutMatchesTheSpec() throws {
        #expect(handMadeFound.count == 66)
        let encoded = try LegacyPacket.encodeReply(to: decodedQuery(),
                                                   answer: .found(client: client, destination: mta, ident: Array("alice".utf8)))
        #expect(encoded == handMadeFound)
        let r = try LegacyPacket.decode(handMadeFound, expecting: .reply)
        #expect(r.kind == .found)
        #expect(r.cookie == 0xdead_beef)
        #expect(r.secret == 12345)
        #expect(r.source == client)
        #expect(r.destination == mta)
        #expect(r.ident == Array("alice".utf8))
        #expect(r.matchesReply(cookie: 0xdead_beef))
        #expect(!r.matchesReply(cookie: 0xdead_beee))
    }

    @Test func notFoundReplyEchoesTheQuery() throws {
        var expected = handMadeQuery
        expected[15] = 0x22  // REPLY|NOTFOUND; everything else echoed
        let encoded = try LegacyPacket.encodeReply(to: decodedQuery(), answer: .notFound)
        #expect(encoded == expected)
        let r = try LegacyPacket.decode(encoded, expecting: .reply)
        #expect(r.kind == .notFound)
        #expect(r.ident.isEmpty)
        #expect(r.matchesReply(cookie: 0xdead_beef))
    }

    @Test func roundTripsWithoutIdentAndAtTheLimits() throws {
        let q = try LegacyPacket.decode(LegacyPacket.encodeQuery(
            cookie: 0, secret: 0, source: ep("0.0.0.0", 0), destination: ep("255.255.255.255", 65535)), expecting: .query)
        #expect(q.source == ep("0.0.0.0", 0))
        #expect(q.destination == ep("255.255.255.255", 65535))
        for ident in [[], Array("x".utf8), [UInt8](repeating: 0xff, count: 31)] {
            let bytes = try LegacyPacket.encodeReply(to: q, answer: .found(client: client, destination: mta, ident: ident))
            let r = try LegacyPacket.decode(bytes, expecting: .reply)
            #expect(r.ident == ident)
            #expect(r.source == client && r.destination == mta)
        }
    }

    @Test func encoderRefusesWhatTheWireCannotCarry() throws {
        #expect(throws: HelperPacketError.badFamily) {
            try LegacyPacket.encodeQuery(cookie: 1, secret: 0, source: ep("fd77:2::1", 1), destination: proxySide)
        }
        #expect(throws: HelperPacketError.badFamily) {
            try LegacyPacket.encodeQuery(cookie: 1, secret: 0, source: routerSide, destination: ep("fd77:2::10", 1))
        }
        let q = try decodedQuery()
        #expect(throws: HelperPacketError.badFamily) {
            try LegacyPacket.encodeReply(to: q, answer: .found(client: ep("fd77:1::2", 1), destination: mta))
        }
        #expect(throws: HelperPacketError.badIdent) {
            try LegacyPacket.encodeReply(to: q, answer: .found(client: client, destination: mta,
                                                               ident: [UInt8](repeating: 0x61, count: 32)))
        }
        #expect(throws: HelperPacketError.badIdent) {
            try LegacyPacket.encodeReply(to: q, answer: .found(client: client, destination: mta, ident: [0x61, 0, 0x62]))
        }
    }

    @Test func truncatedAtEveryLengthIsShort() {
        for packet in [handMadeQuery, handMadeFound] {
            for n in 0..<66 {
                #expect(throws: HelperPacketError.short) { try LegacyPacket.decode(Array(packet.prefix(n)), expecting: .query) }
                #expect(throws: HelperPacketError.short) { try LegacyPacket.decode(Array(packet.prefix(n)), expecting: .reply) }
            }
        }
    }

    @Test func extendedIsLong() {
        #expect(throws: HelperPacketError.long) { try LegacyPacket.decode(handMadeQuery + [0], expecting: .query) }
        #expect(throws: HelperPacketError.long) { try LegacyPacket.decode(handMadeFound + [0], expecting: .reply) }
        #expect(throws: HelperPacketError.long) {
            try LegacyPacket.decode(handMadeQuery + [UInt8](repeating: 0, count: 94), expecting: .query)
        }
    }

    @Test func wrongMagicOrVersion() {
        for offset in 0..<4 {
            var b = handMadeQuery
            b[offset] ^= 0x20
            #expect(throws: HelperPacketError.badMagic) { try LegacyPacket.decode(b, expecting: .query) }
        }
        for version: [UInt8] in [[0x04, 0x01], [0x04, 0x03], [0x00, 0x02], [0x02, 0x04]] {
            var b = handMadeQuery
            b[12] = version[0]
            b[13] = version[1]
            #expect(throws: HelperPacketError.badVersion) { try LegacyPacket.decode(b, expecting: .query) }
        }
    }

    @Test func everyFlagCombinationForEachDirection() throws {
        var b = handMadeQuery
        var acceptedAsQuery: [UInt16] = []
        var acceptedAsReply: [UInt16] = []
        for flags in 0...UInt16.max {
            b[14] = UInt8(flags >> 8)
            b[15] = UInt8(flags & 0xff)
            if (try? LegacyPacket.decode(b, expecting: .query)) != nil { acceptedAsQuery.append(flags) }
            if (try? LegacyPacket.decode(b, expecting: .reply)) != nil { acceptedAsReply.append(flags) }
            if flags != 0x0001 {
                #expect(throws: HelperPacketError.badFlags) { try LegacyPacket.decode(b, expecting: .query) }
            }
        }
        #expect(acceptedAsQuery == [0x0001])
        #expect(acceptedAsReply == [0x0012, 0x0022])
        #expect(throws: HelperPacketError.badFlags) { try LegacyPacket.decode(handMadeFound, expecting: .query) }
    }

    @Test func nonZeroMacIsRefused() {
        for offset in 60..<66 {
            var q = handMadeQuery
            q[offset] = 1
            #expect(throws: HelperPacketError.badReserved) { try LegacyPacket.decode(q, expecting: .query) }
            var r = handMadeFound
            r[offset] = 0x80
            #expect(throws: HelperPacketError.badReserved) { try LegacyPacket.decode(r, expecting: .reply) }
        }
    }

    @Test func identWithoutNulIsRefused() {
        var r = handMadeFound
        for offset in 28..<60 { r[offset] = 0x61 }
        #expect(throws: HelperPacketError.badIdent) { try LegacyPacket.decode(r, expecting: .reply) }
        r[59] = 0  // 31 bytes and the NUL: the longest ident
        #expect((try? LegacyPacket.decode(r, expecting: .reply))?.ident == [UInt8](repeating: 0x61, count: 31))
    }

    @Test func bytesAfterTheIdentNulAreTolerated() throws {
        var r = handMadeFound
        r[40] = 0x7a  // after "alice\0"
        #expect(try LegacyPacket.decode(r, expecting: .reply).ident == Array("alice".utf8))
    }

    @Test func queryIdentMustBeZero() {
        for offset in 28..<60 {
            var q = handMadeQuery
            q[offset] = 0x41
            #expect(throws: HelperPacketError.badIdent) { try LegacyPacket.decode(q, expecting: .query) }
        }
    }

    @Test func aQueryIsNotAReplyToItself() throws {
        #expect(!(try decodedQuery()).matchesReply(cookie: 0xdead_beef))
    }
}
