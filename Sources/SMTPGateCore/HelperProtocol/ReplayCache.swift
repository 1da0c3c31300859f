/// The v2 nonces the helper has answered recently, so a captured query cannot be played again while its
/// timestamp is still fresh. Memory is fixed at `capacity` entries; when every entry is still live the
/// cache refuses new nonces instead of forgetting one (forgetting would reopen exactly that replay).
/// Pure bookkeeping: the caller serialises access and supplies the clock.
public struct ReplayCache: Sendable {
    public let capacity: Int
    public let window: UInt64

    /// nonce → last second at which it must still be refused.
    private var live: [UInt64: UInt64] = [:]
    /// Admission order. Expiry is checked at the head only, so an entry behind one stamped later waits
    /// for it: nonces may be held longer than needed, never forgotten early.
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

    /// Records `nonce` of a packet stamped `timestamp` (already authenticated and found fresh) as seen at
    /// `now`, or throws `.replay` / `.replayCacheFull`.
    public mutating func admit(nonce: UInt64, timestamp: UInt64, now: UInt64) throws(HelperPacketError) {
        expire(now: now)
        if let until = live[nonce], until >= now { throw .replay }
        guard count < capacity else { throw .replayCacheFull }
        // The packet stays fresh until timestamp + window; after that its replay is refused as stale, so
        // the nonce need not be held longer. With clocks in step that is one window, which is what sets
        // the sustainable rate: capacity / window queries a second.
        // Saturating, so an absurd window or clock holds the nonce for good rather than wrapping to "expired".
        let until = timestamp > UInt64.max - window ? UInt64.max : timestamp + window
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
