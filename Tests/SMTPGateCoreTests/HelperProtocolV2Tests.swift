import Crypto
import Testing
@testable import SMTPGateCore

let v2KeyBytes = Array("0123456789abcdef0123456789abcdef".utf8)
let v2Key = HelperKey(fileContents: v2KeyBytes)!

/// `body` (the first 128 bytes) followed by its HMAC-SHA256, computed here rather than by the codec.
func v2Signed(_ body: [UInt8], key: [UInt8] = v2KeyBytes) -> [UInt8] {
    let head = Array(body.prefix(128))
    return head + Array(HMAC<SHA256>.authenticationCode(for: head, using: SymmetricKey(data: key)))
}

@Suite("Helper protocol v2: layout, authentication and validation")
struct HelperProtocolV2Tests {
    let now: UInt64 = 1_700_000_000  // 0x6553f100
    let routerSide = ep("10.77.2.1", 40001)
    let proxySide = ep("10.77.2.10", 9199)
    let client = ep("10.77.1.2", 51000)
    let mta = ep("10.77.3.25", 25)

    /// An IPv4 query, written out offset by offset (unsigned: bytes 0..<128).
    var handMadeQueryBody: [UInt8] {
        var b: [UInt8] = []
        b += [0x52, 0x50, 0x48, 0x32]                          //   0 magic "RPH2"
        b += [0x00, 0x02]                                      //   4 version
        b += [0x00, 0x01]                                      //   6 flags QUERY
        b += [0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]              //   8 timestamp 1700000000
        b += [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]  //  16 nonce
        b += [4]                                               //  24 family
        b += [0]                                               //  25 ident length
        b += [0, 0]                                            //  26 reserved
        b += [10, 77, 2, 1] + [UInt8](repeating: 0, count: 12) //  28 src
        b += [10, 77, 2, 10] + [UInt8](repeating: 0, count: 12)//  44 dst
        b += [0x9c, 0x41]                                      //  60 src port 40001
        b += [0x23, 0xef]                                      //  62 dst port 9199
        b += [UInt8](repeating: 0, count: 64)                  //  64 ident
        return b
    }

    /// An IPv6 FOUND reply with ident "bob", stamped 5 s later (unsigned).
    var handMadeFoundV6Body: [UInt8] {
        var b: [UInt8] = []
        b += [0x52, 0x50, 0x48, 0x32]                          //   0 magic
        b += [0x00, 0x02]                                      //   4 version
        b += [0x00, 0x12]                                      //   6 flags REPLY|FOUND
        b += [0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x05]              //   8 timestamp 1700000005
        b += [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]  //  16 nonce echoed
        b += [6]                                               //  24 family
        b += [3]                                               //  25 ident length
        b += [0, 0]                                            //  26 reserved
        b += [0xfd, 0x77, 0, 1] + [UInt8](repeating: 0, count: 11) + [2]    //  28 fd77:1::2
        b += [0xfd, 0x77, 0, 3] + [UInt8](repeating: 0, count: 11) + [0x25] //  44 fd77:3::25
        b += [0xc7, 0x38]                                      //  60 client port 51000
        b += [0x00, 0x19]                                      //  62 destination port 25
        b += Array("bob".utf8) + [UInt8](repeating: 0, count: 61)          //  64 ident
        return b
    }

    func query() throws -> V2Packet {
        try V2Packet.decode(v2Signed(handMadeQueryBody), key: v2Key, now: now, expecting: .query)
    }

    @Test func queryLayoutMatchesTheSpec() throws {
        #expect(handMadeQueryBody.count == 128)
        let expected = v2Signed(handMadeQueryBody)
        #expect(expected.count == 160)
        let encoded = try V2Packet.encodeQuery(key: v2Key, nonce: 0x0102_0304_0506_0708, timestamp: now,
                                               source: routerSide, destination: proxySide)
        #expect(encoded == expected)
        #expect(try query() == V2Packet(kind: .query, timestamp: now, nonce: 0x0102_0304_0506_0708,
                                        source: routerSide, destination: proxySide, ident: []))
    }

    @Test func ipv6FoundReplyLayoutMatchesTheSpec() throws {
        let q = try V2Packet.decode(
            V2Packet.encodeQuery(key: v2Key, nonce: 0x0102_0304_0506_0708, timestamp: now,
                                 source: ep("fd77:2::1", 40001), destination: ep("fd77:2::10", 9199)),
            key: v2Key, now: now, expecting: .query)
        let encoded = try V2Packet.encodeReply(
            key: v2Key, to: q,
            answer: .found(client: ep("fd77:1::2", 51000), destination: ep("fd77:3::25", 25), ident: Array("bob".utf8)),
            timestamp: now + 5)
        #expect(encoded == v2Signed(handMadeFoundV6Body))
        let r = try V2Packet.decode(v2Signed(handMadeFoundV6Body), key: v2Key, now: now, expecting: .reply)
        #expect(r == V2Packet(kind: .found, timestamp: now + 5, nonce: 0x0102_0304_0506_0708,
                              source: ep("fd77:1::2", 51000), destination: ep("fd77:3::25", 25), ident: Array("bob".utf8)))
        #expect(r.matchesReply(nonce: 0x0102_0304_0506_0708))
        #expect(!r.matchesReply(nonce: 0x0102_0304_0506_0709))
        #expect(!q.matchesReply(nonce: 0x0102_0304_0506_0708))
    }

    @Test func notFoundEchoesTheQueryAddresses() throws {
        var expected = handMadeQueryBody
        expected[7] = 0x22                 // REPLY|NOTFOUND
        expected[15] = 0x02                // the helper's own timestamp, 2 s later
        let encoded = try V2Packet.encodeReply(key: v2Key, to: query(), answer: .notFound, timestamp: now + 2)
        #expect(encoded == v2Signed(expected))
        let r = try V2Packet.decode(encoded, key: v2Key, now: now, expecting: .reply)
        #expect(r.kind == .notFound)
        #expect(r.source == routerSide && r.destination == proxySide)
    }

    @Test(arguments: [
        (ep("10.77.2.1", 40001), ep("10.77.2.10", 9199), ep("10.77.1.2", 51000), ep("10.77.3.25", 25)),
        (ep("fd77:2::1", 1), ep("fd77:2::10", 65535), ep("fd77:1::2", 0), ep("fd77:3::25", 25)),
        (ep("0.0.0.0", 0), ep("255.255.255.255", 65535), ep("::", 0), ep("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)),
    ])
    func roundTrips(src: HelperEndpoint, dst: HelperEndpoint, client: HelperEndpoint, destination: HelperEndpoint) throws {
        let qBytes = try V2Packet.encodeQuery(key: v2Key, nonce: .max, timestamp: now, source: src, destination: dst)
        let q = try V2Packet.decode(qBytes, key: v2Key, now: now, expecting: .query)
        #expect(q.kind == .query && q.nonce == .max && q.source == src && q.destination == dst && q.timestamp == now)
        for ident in [[], Array("u".utf8), [UInt8](repeating: 0xfe, count: 64)] {
            let r = try V2Packet.decode(
                V2Packet.encodeReply(key: v2Key, to: q, answer: .found(client: client, destination: destination, ident: ident),
                                     timestamp: now - 1),
                key: v2Key, now: now, expecting: .reply)
            #expect(r.kind == .found && r.source == client && r.destination == destination && r.ident == ident)
            #expect(r.timestamp == now - 1 && r.matchesReply(nonce: .max))
        }
        let nf = try V2Packet.decode(V2Packet.encodeReply(key: v2Key, to: q, answer: .notFound, timestamp: now),
                                     key: v2Key, now: now, expecting: .reply)
        #expect(nf.kind == .notFound && nf.source == src && nf.destination == dst && nf.ident.isEmpty)
    }

    @Test func encoderRefusesWhatTheWireCannotCarry() throws {
        #expect(throws: HelperPacketError.badFamily) {
            try V2Packet.encodeQuery(key: v2Key, nonce: 1, timestamp: now, source: routerSide, destination: ep("fd77:2::10", 1))
        }
        let q = try query()
        #expect(throws: HelperPacketError.badFamily) {
            try V2Packet.encodeReply(key: v2Key, to: q, answer: .found(client: ep("fd77:1::2", 1), destination: mta), timestamp: now)
        }
        #expect(throws: HelperPacketError.badIdent) {
            try V2Packet.encodeReply(key: v2Key, to: q, answer: .found(client: client, destination: mta,
                                                                        ident: [UInt8](repeating: 0x61, count: 65)), timestamp: now)
        }
        #expect(throws: HelperPacketError.badIdent) {
            try V2Packet.encodeReply(key: v2Key, to: q, answer: .found(client: client, destination: mta, ident: [0]), timestamp: now)
        }
    }

    @Test func truncatedAtEveryLengthIsShortAndExtendedIsLong() {
        let packet = v2Signed(handMadeQueryBody)
        for n in 0..<160 {
            #expect(throws: HelperPacketError.short) {
                try V2Packet.decode(Array(packet.prefix(n)), key: v2Key, now: now, expecting: .query)
            }
        }
        #expect(throws: HelperPacketError.long) { try V2Packet.decode(packet + [0], key: v2Key, now: now, expecting: .query) }
        #expect(throws: HelperPacketError.long) {
            try V2Packet.decode(packet + packet, key: v2Key, now: now, expecting: .query)
        }
    }

    @Test func tamperingWithAnyByteIsBadMAC() {
        for packet in [v2Signed(handMadeQueryBody), v2Signed(handMadeFoundV6Body)] {
            let direction: HelperDirection = packet[7] == 0x01 ? .query : .reply
            #expect((try? V2Packet.decode(packet, key: v2Key, now: now, expecting: direction)) != nil)
            for offset in 0..<160 {
                for flip: UInt8 in [0x01, 0x80, 0xff] {
                    var b = packet
                    b[offset] ^= flip
                    #expect(throws: HelperPacketError.badMAC) {
                        try V2Packet.decode(b, key: v2Key, now: now, expecting: direction)
                    }
                }
            }
        }
    }

    @Test func anotherKeyIsBadMAC() {
        let otherKey = HelperKey(fileContents: Array("0123456789abcdef0123456789abcdeF".utf8))!
        #expect(throws: HelperPacketError.badMAC) {
            try V2Packet.decode(v2Signed(handMadeQueryBody), key: otherKey, now: now, expecting: .query)
        }
        // The key is the file's bytes less one newline: the same secret with and without it is the same key.
        let withNewline = HelperKey(fileContents: v2KeyBytes + [0x0a])!
        #expect((try? V2Packet.decode(v2Signed(handMadeQueryBody), key: withNewline, now: now, expecting: .query)) != nil)
        let withTwoNewlines = HelperKey(fileContents: v2KeyBytes + [0x0a, 0x0a])!
        #expect(throws: HelperPacketError.badMAC) {
            try V2Packet.decode(v2Signed(handMadeQueryBody), key: withTwoNewlines, now: now, expecting: .query)
        }
    }

    @Test func keyNeedsSixteenBytes() {
        #expect(HelperKey(fileContents: [UInt8](repeating: 0x41, count: 15)) == nil)
        #expect(HelperKey(fileContents: [UInt8](repeating: 0x41, count: 15) + [0x0a]) == nil)
        #expect(HelperKey(fileContents: []) == nil)
        #expect(HelperKey(fileContents: [UInt8](repeating: 0x41, count: 16)) != nil)
        #expect(HelperKey(fileContents: [UInt8](repeating: 0x0a, count: 17)) != nil)
    }

    /// Decodes `body` after re-signing it, so the check under test is reached past the HMAC.
    func decodeSigned(_ body: [UInt8], expecting direction: HelperDirection = .query) throws(HelperPacketError) -> V2Packet {
        try V2Packet.decode(v2Signed(body), key: v2Key, now: now, expecting: direction)
    }

    @Test func wrongMagicOrVersion() {
        for offset in 0..<4 {
            var b = handMadeQueryBody
            b[offset] ^= 0x01
            #expect(throws: HelperPacketError.badMagic) { try decodeSigned(b) }
        }
        var legacyMagic = handMadeQueryBody
        legacyMagic[3] = 0x44  // "RPHD"
        #expect(throws: HelperPacketError.badMagic) { try decodeSigned(legacyMagic) }
        for version: [UInt8] in [[0, 0], [0, 1], [0, 3], [0x04, 0x02], [0x02, 0x00]] {
            var b = handMadeQueryBody
            b[4] = version[0]
            b[5] = version[1]
            #expect(throws: HelperPacketError.badVersion) { try decodeSigned(b) }
        }
    }

    @Test func flagCombinations() throws {
        // Every combination of the four defined bits, and every single bit added to a valid value.
        let defined: [UInt16] = [0x0001, 0x0002, 0x0010, 0x0020]
        var candidates = Set<UInt16>()
        for mask in 0..<16 {
            candidates.insert(defined.indices.filter { mask & (1 << $0) != 0 }.reduce(0) { $0 | defined[$1] })
        }
        for bit in 0..<16 {
            for valid: UInt16 in [0x0001, 0x0012, 0x0022] { candidates.insert(valid | 1 << bit) }
        }
        for flags in candidates {
            var b = handMadeQueryBody
            b[6] = UInt8(flags >> 8)
            b[7] = UInt8(flags & 0xff)
            if flags == 0x0001 {
                #expect(try decodeSigned(b, expecting: .query).kind == .query)
            } else {
                #expect(throws: HelperPacketError.badFlags) { try decodeSigned(b, expecting: .query) }
            }
            switch flags {
            case 0x0012: #expect(try decodeSigned(b, expecting: .reply).kind == .found)
            case 0x0022: #expect(try decodeSigned(b, expecting: .reply).kind == .notFound)
            default: #expect(throws: HelperPacketError.badFlags) { try decodeSigned(b, expecting: .reply) }
            }
        }
    }

    @Test func nonZeroReservedIsRefused() {
        for offset in 26..<28 {
            var b = handMadeQueryBody
            b[offset] = 1
            #expect(throws: HelperPacketError.badReserved) { try decodeSigned(b) }
        }
    }

    @Test func wrongFamilyIsRefused() {
        for family: UInt8 in [0, 1, 2, 5, 10, 41, 0xff] {
            var b = handMadeQueryBody
            b[24] = family
            #expect(throws: HelperPacketError.badFamily) { try decodeSigned(b) }
        }
    }

    @Test func ipv4AddressPaddingMustBeZero() {
        for offset in Array(32..<44) + Array(48..<60) {
            var b = handMadeQueryBody
            b[offset] = 0x01
            #expect(throws: HelperPacketError.badAddress) { try decodeSigned(b) }
        }
        // The same bytes are address bytes when the family is 6.
        var v6 = handMadeQueryBody
        v6[24] = 6
        v6[43] = 1
        #expect((try? decodeSigned(v6))?.source.address.text == "a4d:201::1")
    }

    @Test func identLengthPaddingAndPlacement() throws {
        var tooLong = handMadeFoundV6Body
        tooLong[25] = 65
        for offset in 67..<128 { tooLong[offset] = 0x61 }
        #expect(throws: HelperPacketError.badIdent) { try decodeSigned(tooLong, expecting: .reply) }
        tooLong[25] = 0xff
        #expect(throws: HelperPacketError.badIdent) { try decodeSigned(tooLong, expecting: .reply) }

        for offset in 67..<128 {
            var b = handMadeFoundV6Body
            b[offset] = 0x20
            #expect(throws: HelperPacketError.badIdent) { try decodeSigned(b, expecting: .reply) }
        }
        var withNul = handMadeFoundV6Body
        withNul[65] = 0
        #expect(throws: HelperPacketError.badIdent) { try decodeSigned(withNul, expecting: .reply) }

        var inQuery = handMadeQueryBody
        inQuery[25] = 1
        inQuery[64] = 0x61
        #expect(throws: HelperPacketError.badIdent) { try decodeSigned(inQuery, expecting: .query) }
        var inNotFound = handMadeFoundV6Body
        inNotFound[7] = 0x22
        #expect(throws: HelperPacketError.badIdent) { try decodeSigned(inNotFound, expecting: .reply) }

        var full = handMadeFoundV6Body
        full[25] = 64
        for offset in 64..<128 { full[offset] = 0x7a }
        #expect(try decodeSigned(full, expecting: .reply).ident == [UInt8](repeating: 0x7a, count: 64))
    }

    @Test func staleAndFutureTimestamps() throws {
        let packet = v2Signed(handMadeQueryBody)  // stamped `now`
        for skew: Int64 in [-30, -1, 0, 1, 30] {
            let at = UInt64(Int64(now) + skew)
            #expect((try? V2Packet.decode(packet, key: v2Key, now: at, expecting: .query)) != nil)
        }
        for skew: Int64 in [-31, 31, -100_000, 100_000] {
            let at = UInt64(Int64(now) + skew)
            #expect(throws: HelperPacketError.stale) { try V2Packet.decode(packet, key: v2Key, now: at, expecting: .query) }
        }
        #expect(throws: HelperPacketError.stale) { try V2Packet.decode(packet, key: v2Key, now: 0, expecting: .query) }
        #expect(throws: HelperPacketError.stale) { try V2Packet.decode(packet, key: v2Key, now: .max, expecting: .query) }
        #expect(throws: HelperPacketError.stale) {
            try V2Packet.decode(packet, key: v2Key, now: now + 6, window: 5, expecting: .query)
        }
        #expect((try? V2Packet.decode(packet, key: v2Key, now: now + 5, window: 5, expecting: .query)) != nil)
        for extreme: UInt64 in [0, .max] {
            let bytes = try V2Packet.encodeQuery(key: v2Key, nonce: 1, timestamp: extreme, source: routerSide, destination: proxySide)
            #expect(throws: HelperPacketError.stale) { try V2Packet.decode(bytes, key: v2Key, now: now, expecting: .query) }
            #expect((try? V2Packet.decode(bytes, key: v2Key, now: extreme, expecting: .query)) != nil)
        }
    }

    @Test func replayedQueryIsRefusedByTheCache() throws {
        var cache = ReplayCache(capacity: 16)
        let q = try query()
        try cache.admit(nonce: q.nonce, timestamp: q.timestamp, now: now)
        let again = try V2Packet.decode(v2Signed(handMadeQueryBody), key: v2Key, now: now + 10, expecting: .query)
        #expect(throws: HelperPacketError.replay) { try cache.admit(nonce: again.nonce, timestamp: again.timestamp, now: now + 10) }
    }
}
