import Crypto
import FuzzSupport
import SMTPGateCore

// The helper-protocol codecs, both versions. The first byte picks a test:
//   0  LegacyPacket.decode of the rest, both directions;
//   1  V2Packet.decode of the rest as it is (nearly always refused before any field is read);
//   2  the rest cut or padded to 128 bytes and signed with the test key, then V2Packet.decode, so the fields
//      are fuzzed behind a valid HMAC;
//   3  packets encoded from fuzzed fields, both versions.
// A packet decodes only in the direction its flags say, with fields the format can carry; what decodes
// re-encodes to the same bytes (0x0402: but for the ident bytes it does not check, after the NUL and in a
// NOTFOUND); whatever encodes decodes to the same fields, and encoding refuses exactly the fields the format
// cannot carry.
let keyBytes = Array(ascii: "0123456789abcdef0123456789abcdef")
let key = HelperKey(fileContents: keyBytes)!
let now: UInt64 = 1_700_000_000

func signed(_ head: [UInt8]) -> [UInt8] {
    head + Array(HMAC<SHA256>.authenticationCode(for: head, using: SymmetricKey(data: keyBytes)))
}

func checkLegacyDecode(_ bytes: [UInt8]) {
    for direction in [HelperDirection.query, .reply] {
        guard let p = try? LegacyPacket.decode(bytes, expecting: direction) else { continue }
        check(p.kind.direction == direction, "legacy \(p.kind) decoded as \(direction)")
        check(p.source.family == .v4 && p.destination.family == .v4, "legacy packet with IPv6")
        check(p.ident.count < LegacyPacket.identCapacity && !p.ident.contains(0), "legacy ident \(show(p.ident))")
        let again = try! legacyReencode(p)
        var expected = bytes
        // Old helpers may leave anything after the ident's NUL, and a NOTFOUND's ident means nothing (the
        // decoder passes it on, the proxy ignores it); the encoder writes zeros.
        for i in (p.kind == .notFound ? 28 : 28 + p.ident.count)..<60 { expected[i] = 0 }
        check(again == expected, "legacy re-encode differs: \(show(again))")
    }
}

func legacyReencode(_ p: LegacyPacket) throws(HelperPacketError) -> [UInt8] {
    switch p.kind {
    case .query:
        try LegacyPacket.encodeQuery(cookie: p.cookie, secret: p.secret, source: p.source, destination: p.destination)
    case .found:
        try LegacyPacket.encodeReply(to: p, answer: .found(client: p.source, destination: p.destination, ident: p.ident))
    case .notFound:
        try LegacyPacket.encodeReply(to: p, answer: .notFound)
    }
}

func checkV2Decode(_ bytes: [UInt8]) {
    for direction in [HelperDirection.query, .reply] {
        guard let p = try? V2Packet.decode(bytes, key: key, now: now, expecting: direction) else { continue }
        check(p.kind.direction == direction, "v2 \(p.kind) decoded as \(direction)")
        check(p.source.family == p.destination.family, "v2 packet mixes families")
        check(p.ident.count <= V2Packet.identCapacity && !p.ident.contains(0), "v2 ident \(show(p.ident))")
        check(p.kind == .found || p.ident.isEmpty, "v2 ident in a \(p.kind)")
        let again = try! v2Reencode(p)
        check(again == bytes, "v2 re-encode differs: \(show(again))")
        check(stale(bytes, direction), "v2 packet accepted outside the window")
    }
}

func v2Reencode(_ p: V2Packet) throws(HelperPacketError) -> [UInt8] {
    switch p.kind {
    case .query:
        try V2Packet.encodeQuery(key: key, nonce: p.nonce, timestamp: p.timestamp, source: p.source, destination: p.destination)
    case .found:
        try V2Packet.encodeReply(key: key, to: p, answer: .found(client: p.source, destination: p.destination, ident: p.ident),
                                 timestamp: p.timestamp)
    case .notFound:
        try V2Packet.encodeReply(key: key, to: p, answer: .notFound, timestamp: p.timestamp)
    }
}

/// The same packet a window and a second later (or earlier) is refused as stale.
func stale(_ bytes: [UInt8], _ direction: HelperDirection) -> Bool {
    let ts = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    for then in [ts &+ V2Packet.defaultWindow &+ 1, ts &- V2Packet.defaultWindow &- 1] {
        do {
            _ = try V2Packet.decode(bytes, key: key, now: then, expecting: direction)
            return false
        } catch {
            if error != .stale { return false }
        }
    }
    return true
}

func endpoint(_ input: inout FuzzInput, v6: Bool) -> HelperEndpoint {
    let address = input.bytes(v6 ? 16 : 4) + [UInt8](repeating: 0, count: 16)
    return HelperEndpoint(addressBytes: Array(address.prefix(v6 ? 16 : 4)), port: UInt16(input.byte()) << 8 | UInt16(input.byte()))!
}

func checkEncode(_ input: inout FuzzInput) {
    let shape = input.byte()
    let source = endpoint(&input, v6: shape & 1 != 0)
    let destination = endpoint(&input, v6: shape & 2 != 0)
    let ident = input.bytes(Int(input.byte() % 80))
    let word = input.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let timestamp = now - 30 + UInt64(input.byte() % 61)
    let bothV4 = source.family == .v4 && destination.family == .v4
    let sameFamily = source.family == destination.family

    // 0x0402
    let cookie = UInt32(truncatingIfNeeded: word), secret = UInt32(truncatingIfNeeded: word >> 32)
    do {
        let q = try LegacyPacket.encodeQuery(cookie: cookie, secret: secret, source: source, destination: destination)
        check(bothV4, "legacy query with IPv6 encoded")
        let p = try LegacyPacket.decode(q, expecting: .query)
        check(p.cookie == cookie && p.secret == secret && p.source == source && p.destination == destination, "legacy query fields")
        let found = try? LegacyPacket.encodeReply(to: p, answer: .found(client: destination, destination: source, ident: ident))
        check((found != nil) == (ident.count < LegacyPacket.identCapacity && !ident.contains(0)), "legacy ident \(show(ident)) refused or not")
        if let found {
            let r = try LegacyPacket.decode(found, expecting: .reply)
            check(r.kind == .found && r.matchesReply(cookie: cookie) && r.ident == ident && r.source == destination, "legacy reply fields")
        }
        check((try? LegacyPacket.decode(q, expecting: .reply)) == nil, "legacy query decodes as a reply")
    } catch {
        check(!bothV4 && error == .badFamily, "legacy refused \(error)")
    }

    // v2
    do {
        let q = try V2Packet.encodeQuery(key: key, nonce: word, timestamp: timestamp, source: source, destination: destination)
        check(sameFamily, "v2 query mixing families encoded")
        let p = try V2Packet.decode(q, key: key, now: now, expecting: .query)
        check(p.nonce == word && p.timestamp == timestamp && p.source == source && p.destination == destination, "v2 query fields")
        let found = try? V2Packet.encodeReply(key: key, to: p, answer: .found(client: source, destination: destination, ident: ident),
                                              timestamp: timestamp)
        check((found != nil) == (ident.count <= V2Packet.identCapacity && !ident.contains(0)), "v2 ident \(show(ident)) refused or not")
        if let found {
            let r = try V2Packet.decode(found, key: key, now: now, expecting: .reply)
            check(r.kind == .found && r.matchesReply(nonce: word) && r.ident == ident && r.source == source, "v2 reply fields")
        }
        let notFound = try V2Packet.encodeReply(key: key, to: p, answer: .notFound, timestamp: timestamp)
        let r = try V2Packet.decode(notFound, key: key, now: now, expecting: .reply)
        check(r.kind == .notFound && r.source == source && r.destination == destination, "v2 notFound fields")
        check((try? V2Packet.decode(q, key: key, now: now, expecting: .reply)) == nil, "v2 query decodes as a reply")
    } catch {
        check(!sameFamily && error == .badFamily, "v2 refused \(error)")
    }
}

fuzzMain { data in
    var input = FuzzInput(data)
    switch input.byte() % 4 {
    case 0: checkLegacyDecode(input.rest())
    case 1: checkV2Decode(input.rest())
    case 2: checkV2Decode(signed(Array((input.rest() + [UInt8](repeating: 0, count: 128)).prefix(128))))
    default: checkEncode(&input)
    }
}
