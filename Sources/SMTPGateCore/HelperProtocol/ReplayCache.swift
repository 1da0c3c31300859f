/// The v2 nonces the helper has answered recently, so a captured query cannot be played again while its
/// timestamp is still fresh. Memory is fixed at `capacity` entries; when every entry is still live the
/// cache refuses new nonces instead of forgetting one (forgetting would reopen exactly that replay).
/// Pure bookkeeping: the caller serialises access and supplies the clock.
public struct ReplayCache: Sendable {
    public let capacity: Int
    public let window: UInt64

    /// nonce → last second at which it must still be refused.
    private var live: [UInt64: UInt64] = [:]
    /// Admission order; with a clock that does not run backwards this is also expiry order.
    private var ring: [(nonce: UInt64, until: UInt64)]
    private var head = 0
    private var count = 0

    public init(capacity: Int, window: UInt64 = V2Packet.defaultWindow) {
        precondition(capacity > 0, "a replay cache needs room for at least one nonce")
        self.capacity = capacity
        self.window = window
        ring = Array(repeating: (0, 0), count: capacity)
        live.reserveCapacity(capacity)
    }

    /// Records `nonce` as seen at `now`, or throws `.replay` / `.replayCacheFull`.
    public mutating func admit(nonce: UInt64, now: UInt64) throws(HelperPacketError) {
        expire(now: now)
        if let until = live[nonce], until >= now { throw .replay }
        guard count < capacity else { throw .replayCacheFull }
        // A query accepted now may carry a timestamp up to `window` ahead, and stays fresh for `window`
        // after that timestamp: its nonce must be refused until now + 2 × window inclusive.
        // Saturating, so an absurd window or clock holds the nonce for good rather than wrapping to "expired".
        let hold = window > UInt64.max / 2 ? UInt64.max : 2 * window
        let until = now > UInt64.max - hold ? UInt64.max : now + hold
        live[nonce] = until
        ring[(head + count) % capacity] = (nonce, until)
        count += 1
    }

    private mutating func expire(now: UInt64) {
        while count > 0, ring[head].until < now {
            let entry = ring[head]
            if live[entry.nonce] == entry.until { live[entry.nonce] = nil }
            head = (head + 1) % capacity
            count -= 1
        }
    }
}
