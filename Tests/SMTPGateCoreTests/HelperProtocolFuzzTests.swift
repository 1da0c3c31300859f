import Testing
@testable import SMTPGateCore

/// Seeded (the target's `SplitMix64`), so a failure replays exactly.
@Suite("Helper protocol: seeded fuzz of both decoders")
struct HelperProtocolFuzzTests {
    func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    @Test func legacyDecoderSurvivesRandomBytes() throws {
        var rng = SplitMix64(seed: 0x0402)
        var accepted = 0
        for i in 0..<50_000 {
            var b = randomBytes(i % 3 == 0 ? LegacyPacket.size : Int.random(in: 0...200, using: &rng), &rng)
            if b.count == LegacyPacket.size, i % 2 == 0 {
                // Valid framing and a sparse tail, so the later checks get exercised too.
                b.replaceSubrange(0..<4, with: [0x52, 0x50, 0x48, 0x44])
                b.replaceSubrange(12..<16, with: [0x04, 0x02, 0x00, [0x01, 0x12, 0x22][i % 3]])
                for j in 28..<66 where Bool.random(using: &rng) { b[j] = 0 }
            }
            for direction in [HelperDirection.query, .reply] {
                guard let p = try? LegacyPacket.decode(b, expecting: direction) else { continue }
                accepted += 1
                #expect(p.kind.direction == direction)
                #expect(p.source.family == IPAddress.Family.v4 && p.ident.count < 32 && !p.ident.contains(0))
            }
        }
        #expect(accepted > 0)
    }

    @Test func v2DecoderSurvivesRandomBytes() throws {
        var rng = SplitMix64(seed: 0x5250_4832)
        let now: UInt64 = 1_700_000_000
        var acceptedFamilies = Set<IPAddress.Family>()
        for i in 0..<20_000 {
            let b: [UInt8]
            if i % 2 == 0 {
                b = randomBytes(Int.random(in: 0...320, using: &rng), &rng)
            } else {
                // Signed with the right key, so parsing past the HMAC is fuzzed as well.
                var body = randomBytes(128, &rng)
                if i % 4 == 1 {
                    body.replaceSubrange(0..<8, with: [0x52, 0x50, 0x48, 0x32, 0, 2, 0, [0x01, 0x12, 0x22][i % 3]])
                    body.replaceSubrange(8..<16, with: (0..<8).map { UInt8(truncatingIfNeeded: now >> (56 - 8 * $0)) })
                    body[24] = [4, 6][(i / 4) % 2]
                    if body[24] == 4, i % 16 == 1 {
                        for j in Array(32..<44) + Array(48..<60) { body[j] = 0 }
                    }
                    body[25] = UInt8.random(in: 0...70, using: &rng)
                    for j in 26..<128 where Bool.random(using: &rng) || j < 28 || (j >= 64 + Int(body[25])) { body[j] = 0 }
                }
                b = v2Signed(body)
            }
            for direction in [HelperDirection.query, .reply] {
                guard let p = try? V2Packet.decode(b, key: v2Key, now: now, expecting: direction) else { continue }
                acceptedFamilies.insert(p.source.family)
                // Decoding is strict enough that whatever it accepts, the encoder writes back byte for byte.
                let again: [UInt8] = switch p.kind {
                case .query:
                    try V2Packet.encodeQuery(key: v2Key, nonce: p.nonce, timestamp: p.timestamp,
                                             source: p.source, destination: p.destination)
                case .found:
                    try V2Packet.encodeReply(key: v2Key, to: p, answer: .found(client: p.source, destination: p.destination,
                                                                               ident: p.ident), timestamp: p.timestamp)
                case .notFound:
                    try V2Packet.encodeReply(key: v2Key, to: p, answer: .notFound, timestamp: p.timestamp)
                }
                #expect(again == b)
            }
        }
        #expect(acceptedFamilies == [.v4, .v6])
    }
}
